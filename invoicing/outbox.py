"""The outbox: claim, finish and reschedule work items with a lease, and find what is due.

Redis only carries outbox ids. Whoever wins the compare-and-set in `claim` does the work, so a
duplicate RQ job, a re-enqueue by the sweeper or a second worker is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from models import OutboxItem, OutboxState

# Backoff for transient failures, in seconds; the last value repeats.
BACKOFF = (5, 30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = 20


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1])


def claim(
    session: Session, outbox_id: str, *, now: datetime, lease: timedelta
) -> OutboxItem | None:
    """Take the item if it is due and nobody holds a live lease on it; None otherwise.

    One UPDATE … RETURNING: the compare-and-set and the read of the claimed row in one round
    trip (the claim was a tenth of an invoice job's time as an UPDATE plus a SELECT).
    """
    claimable = sa.or_(
        sa.and_(OutboxItem.state == OutboxState.PENDING, OutboxItem.due_at <= now),
        # A lease that ran out belongs to a worker that died (or hung past every timeout).
        sa.and_(OutboxItem.state == OutboxState.RUNNING, OutboxItem.locked_until < now),
    )
    claimed = (
        sa.update(OutboxItem)
        .where(OutboxItem.id == outbox_id, claimable)
        .values(
            state=OutboxState.RUNNING,
            locked_until=now + lease,
            attempts=OutboxItem.attempts + 1,
            updated_at=now,
        )
        .returning(OutboxItem)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return session.scalars(claimed).one_or_none()


def finish(session: Session, item: OutboxItem, *, now: datetime) -> None:
    item.state = OutboxState.DONE
    item.locked_until = None
    item.last_error = None
    item.updated_at = now


def reschedule(session: Session, item: OutboxItem, *, now: datetime, error: str) -> None:
    """Release the lease and come back later, with backoff; give up after MAX_ATTEMPTS."""
    item.locked_until = None
    item.last_error = error[:2000]
    item.updated_at = now
    if item.attempts >= MAX_ATTEMPTS:
        item.state = OutboxState.DEAD
        return
    item.state = OutboxState.PENDING
    item.due_at = now + backoff(item.attempts)


def snooze(
    session: Session, item: OutboxItem, *, now: datetime, delay: timedelta, reason: str
) -> None:
    """Come back after `delay` without counting it as a failure (e.g. waiting for KSeF)."""
    item.state = OutboxState.PENDING
    item.locked_until = None
    item.last_error = reason[:2000]
    item.updated_at = now
    # Poll less often the longer it waits, up to once an hour.
    item.due_at = now + min(delay * max(item.attempts, 1), timedelta(hours=1))


def park(session: Session, item: OutboxItem, *, now: datetime, error: str) -> None:
    """Stop working on the item until a human re-queues it (validation error, ambiguity)."""
    item.state = OutboxState.DEAD
    item.locked_until = None
    item.last_error = error[:2000]
    item.updated_at = now


def requeue(session: Session, *, kind: str, ref_id: str, now: datetime) -> OutboxItem:
    """Make the item for (kind, ref_id) due now, creating it if needed (admin retry)."""
    item = session.scalar(
        sa.select(OutboxItem).where(OutboxItem.kind == kind, OutboxItem.ref_id == ref_id)
    )
    if item is None:
        item = OutboxItem(kind=kind, ref_id=ref_id, due_at=now)
        session.add(item)
    else:
        item.state = OutboxState.PENDING
        item.due_at = now
        item.locked_until = None
        item.attempts = 0
    session.flush()
    return item


def due_ids(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Items a worker should pick up: pending and due, or running with an expired lease."""
    return list(
        session.scalars(
            sa.select(OutboxItem.id)
            .where(
                sa.or_(
                    sa.and_(OutboxItem.state == OutboxState.PENDING, OutboxItem.due_at <= now),
                    sa.and_(OutboxItem.state == OutboxState.RUNNING, OutboxItem.locked_until < now),
                )
            )
            .order_by(OutboxItem.due_at)
            .limit(limit)
        )
    )


def sweep(
    sessions: sessionmaker[Session], enqueue: Callable[[list[str]], int], *, now: datetime
) -> int:
    """Hand the due items to `enqueue` (which skips those already waiting); return its count.

    This is what makes Redis a mere carrier: after a flush, a lost enqueue or a killed worker,
    the next sweep finds the work in the database.
    """
    with sessions() as session:
        ids = due_ids(session, now=now)
    return enqueue(ids)
