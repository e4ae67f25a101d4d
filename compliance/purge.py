"""The retention purge: plan, then execute, in one transaction with its audit entry.

``plan`` reads the expired rows (``compliance.purge_snapshot``) and the active legal holds
(``compliance.holds``) and decides per row with the pure ``compliance.purge_plan.decide``.
``execute`` carries the plan out and removes the PDFs of purged invoices once the transaction
has committed. ``run_purge`` does both, or only counts (dry run), and writes ONE audit entry.
A second run does nothing more: deleted rows are gone and anonymised orders are recognised.
What is kept for how long is in docs/retention-law.md and the rule table docs/retention.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.holds import active_holds, held_by
from compliance.purge_plan import PurgePlan, anonymise_order, decide
from compliance.purge_report import PurgeReport
from compliance.purge_snapshot import chunks, snapshot
from compliance.retention import RetentionEngine
from models import (
    AuditEntry,
    CustomerStub,
    Invoice,
    LoginAttempt,
    Order,
    OutboxItem,
    Payment,
    Refund,
    WebhookEvent,
)
from models.blobs import BlobStore

__all__ = ["Progress", "execute", "plan", "run_purge"]

log = logging.getLogger("kwit.retention")

# progress(total) returns a context manager whose object has update(n), e.g. a click bar.
Progress = Callable[[int], AbstractContextManager[Any]]


def plan(session: Session, engine: RetentionEngine | None, *, today: date) -> PurgePlan:
    """Select what a purge as of ``today`` deletes or anonymises; changes nothing."""
    return decide(
        snapshot(session, engine, today=today), today=today, held=held_by(active_holds(session))
    )


def run_purge(
    sessions: Callable[[], Session],
    engine: RetentionEngine,
    blobs: BlobStore,
    *,
    today: date,
    now: datetime,
    dry_run: bool = False,
    actor: str,
    progress: Progress | None = None,
) -> PurgeReport:
    """Purge what expired before ``today`` (or only count it) and write ONE audit entry.

    ``sessions`` opens a session (a ``sessionmaker``); ``now`` stamps the audit entry, which is
    tagged by the engine's audit_log rule. Idempotent: a second run as of the same day deletes
    nothing more.
    """
    with sessions() as session:
        planned = plan(session, engine, today=today)
        if dry_run:
            report = PurgeReport.from_plan(planned, dry_run=True)
        elif progress is not None:
            with progress(planned.total) as bar:
                report = execute(session, blobs, planned, progress=bar.update)
        else:
            report = execute(session, blobs, planned)
        tag = engine.audit_log(at=now)
        session.add(
            AuditEntry(
                actor=actor,
                action="retention.dry_run" if dry_run else "retention.run",
                object=f"as_of:{today.isoformat()}",
                at=now,
                details=report.as_dict(),
                retention_basis=tag.code,
                retain_until=tag.until,
            )
        )
        # One commit: the purge and its audit entry stand or fall together; PDFs go after it.
        session.commit()
    return report


def execute(
    session: Session,
    blobs: BlobStore,
    plan: PurgePlan,
    *,
    progress: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Delete and anonymise as planned (flushes; the caller commits), then drop the PDFs.

    The PDFs are removed only after the session's transaction commits, so a failed commit never
    leaves a surviving invoice without its PDF; after a rollback they stay.
    """
    step = progress or (lambda _n: None)
    k = plan.kinds
    _delete(session, WebhookEvent, WebhookEvent.id, k["webhook_events"].delete, step)
    # Corrections come first in the plan, so no chunk removes an original before its correction.
    _delete(session, Invoice, Invoice.id, k["invoices"].delete, step)
    _delete(session, OutboxItem, OutboxItem.ref_id, k["invoices"].delete, lambda _n: None)
    _delete(session, Refund, Refund.id, k["refunds"].delete, step)
    _delete(session, Payment, Payment.id, k["payments"].delete, step)
    _delete(session, Order, Order.id, k["orders"].delete, step)
    for chunk in chunks(k["orders"].anonymise):
        for order in session.scalars(sa.select(Order).where(Order.id.in_(chunk))):
            anonymise_order(order)
        step(len(chunk))
    _delete(session, AuditEntry, AuditEntry.id, k["audit_log"].delete, step)
    _delete(session, LoginAttempt, LoginAttempt.id, k["login_attempts"].delete, step)
    _delete(session, CustomerStub, CustomerStub.customer_ref, k["customer_stubs"].delete, step)
    session.flush()
    report = PurgeReport.from_plan(plan, dry_run=False)
    if plan.blobs:
        _after_commit(session, lambda: _drop_blobs(blobs, report))
    log.info("retention purge", extra={"as_of": plan.today.isoformat(), "counts": report.counts})
    return report


# --- executing -------------------------------------------------------------------------------


def _delete(
    session: Session, model: Any, column: Any, ids: Sequence[str], step: Callable[[int], None]
) -> None:
    for chunk in chunks(ids):
        session.execute(
            sa.delete(model).where(column.in_(chunk)),
            execution_options={"synchronize_session": "fetch"},
        )
        step(len(chunk))


def _drop_blobs(blobs: BlobStore, report: PurgeReport) -> None:
    for key in report.blobs:
        try:
            report.blobs_deleted += bool(blobs.delete(key))
        except OSError:
            # The row is gone already; an orphaned PDF is logged, never a reason to fail.
            log.exception("could not delete invoice PDF", extra={"blob": key})


def _after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's current transaction commits (not after a rollback)."""
    state = {"done": False}

    def committed(_session: Session) -> None:
        if not state["done"]:
            state["done"] = True
            action()

    def rolled_back(_session: Session) -> None:
        state["done"] = True

    sa.event.listen(session, "after_commit", committed, once=True)
    sa.event.listen(session, "after_rollback", rolled_back, once=True)
