"""Poll PayNow for what its notifications did not tell us (`kwit paynow sync`).

PayNow redelivers notifications, but a misconfigured notification URL, a long outage or a lost
delivery can leave a payment NEW/PENDING in Kwit while PayNow has long CONFIRMED it (see
docs/protocols/paynow.md, notification retries). Refunds have no notifications at all, so their
status is only ever polled.

- Payments (provider paynow, no status yet, NEW or PENDING, untouched for `min_age`) are read with
  GET /v3/payments/{id}/status and applied through `payments.apply_paynow_status`, the same state
  machine as notifications. A polled status has no `modifiedAt`, so it is applied with
  ``modified_at=None``: the time check is skipped and only reachability decides (CONFIRMED always
  applies; a final status is never left), and the stored `provider_modified_at` is kept, so a
  late notification is still compared with the last one that carried a timestamp. PayNow's
  status endpoint is its current truth, so skipping the time check cannot move a payment back.
- Refunds with a PayNow id and status NEW/PENDING are read with GET /v3/refunds/{id}/status. On
  SUCCESSFUL, `completed_at` is set and the correction invoice is queued
  (`refunds.apply_refund_status`).
- A refund without a PayNow id is one whose create call got no answer (Kwit answered 502). It is
  retried with the same derived Idempotency-Key (`refunds.submit_refund`), so PayNow creates it
  at most once — but only within `refunds.RESUME_WINDOW` of its creation. Older ones are counted
  as unresolved for a human.

No lock is held during a PayNow call: candidates are read, the transaction is ended, and each
result is applied in its own short transaction (row locked FOR UPDATE) and committed. The
returned outbox ids are committed; the caller dispatches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import EventOutcome, Order, Payment, Refund
from models.enums import PaynowPaymentStatus
from webhooks.events import Provider
from webhooks.ingest import IngestContext
from webhooks.payments import apply_paynow_status, lock_payment
from webhooks.paynow_client import PaynowAuthError, PaynowClient, PaynowError
from webhooks.refunds import OPEN_REFUND_STATUSES, RESUME_WINDOW, apply_refund_status, submit_refund

__all__ = ["OPEN_PAYMENT_STATUSES", "SyncReport", "sync"]

log = logging.getLogger("kwit.paynow_sync")

# Besides payments with no status yet (NULL).
OPEN_PAYMENT_STATUSES = (PaynowPaymentStatus.NEW, PaynowPaymentStatus.PENDING)
DEFAULT_LIMIT = 500


@dataclass
class SyncReport:
    """What one sync run did. `outbox_ids` are committed and still to be dispatched."""

    payments_checked: int = 0
    payments_updated: int = 0
    payments_paid: int = 0
    refunds_checked: int = 0
    refunds_updated: int = 0
    refunds_completed: int = 0
    refunds_resumed: int = 0
    refunds_unresolved: int = 0
    errors: int = 0
    outbox_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"payments: {self.payments_checked} checked, {self.payments_updated} updated, "
            f"{self.payments_paid} paid; refunds: {self.refunds_checked} checked, "
            f"{self.refunds_updated} updated, {self.refunds_completed} completed, "
            f"{self.refunds_resumed} resumed, {self.refunds_unresolved} unresolved; "
            f"errors: {self.errors}; invoices queued: {len(self.outbox_ids)}"
        )


def sync(
    session: Session,
    ctx: IngestContext,
    client: PaynowClient,
    *,
    now: datetime,
    min_age: timedelta,
    limit: int = DEFAULT_LIMIT,
) -> SyncReport:
    """Poll open PayNow payments and refunds older than `min_age`; commits per item.

    A PayNow auth error stops the run (it would fail for every item) and is raised after what
    was done so far is committed; other PayNow errors are counted and the item is skipped.
    """
    report = SyncReport()
    cutoff = now - min_age
    payment_ids = session.scalars(
        sa.select(Payment.id)
        .where(
            Payment.provider == Provider.PAYNOW,
            Payment.status.is_(None) | Payment.status.in_(OPEN_PAYMENT_STATUSES),
            Payment.updated_at <= cutoff,
        )
        .order_by(Payment.updated_at)
        .limit(limit)
    ).all()
    refund_ids = session.scalars(
        sa.select(Refund.id)
        .where(
            Refund.provider == Provider.PAYNOW,
            Refund.status.in_(OPEN_REFUND_STATUSES),
            Refund.updated_at <= cutoff,
        )
        .order_by(Refund.updated_at)
        .limit(limit)
    ).all()
    session.commit()  # no transaction (on SQLite: no write lock) while PayNow is called
    for payment_id in payment_ids:
        _guarded(report, session, _sync_payment, session, ctx, client, payment_id, now, report)
    for refund_id in refund_ids:
        _guarded(report, session, _sync_refund, session, client, refund_id, now, report)
    return report


def _guarded(report: SyncReport, session: Session, step: Callable[..., None], *args: Any) -> None:
    """Run one item; a PayNow error skips it (an auth error, the same for all, stops the run)."""
    try:
        step(*args)
    except PaynowError as exc:
        session.rollback()
        report.errors += 1
        log.warning("paynow sync: item skipped", extra={"error": type(exc).__name__})
        if isinstance(exc, PaynowAuthError):
            raise


def _sync_payment(
    session: Session,
    ctx: IngestContext,
    client: PaynowClient,
    payment_id: str,
    now: datetime,
    report: SyncReport,
) -> None:
    """One payment: ask PayNow, then apply the answer in a short transaction of its own."""
    provider_payment_id = session.scalar(
        sa.select(Payment.provider_payment_id).where(Payment.id == payment_id)
    )
    session.commit()  # the read ends here: nothing is held while PayNow is called
    if provider_payment_id is None:
        return
    report.payments_checked += 1
    answer = client.payment_status(provider_payment_id)
    status = str((answer or {}).get("status") or "")
    payment = lock_payment(session, Provider.PAYNOW, provider_payment_id)
    order = session.get(Order, payment.order_id) if payment else None
    result = None
    if payment is not None and order is not None and status:
        result = apply_paynow_status(
            session, ctx.retention, order, payment, status=status, modified_at=None, now=now
        )
        if result.outcome is not EventOutcome.APPLIED:
            # Checked, unchanged: the next check waits another min_age, and payments still open
            # take turns instead of the oldest filling every run's limit.
            payment.updated_at = now
    session.commit()  # one payment per transaction: its row lock is held only this long
    if result is None or result.outcome is not EventOutcome.APPLIED:
        return
    report.payments_updated += 1
    report.payments_paid += status == PaynowPaymentStatus.CONFIRMED
    report.outbox_ids.extend(result.outbox_ids)
    log.info(
        "paynow sync: payment status applied",
        extra={"payment_id": payment_id, "status": status},
    )


def _sync_refund(
    session: Session, client: PaynowClient, refund_id: str, now: datetime, report: SyncReport
) -> None:
    """One refund: resume its lost create call, or poll and apply its status (commits)."""
    row = session.execute(
        sa.select(Refund.provider_refund_id, Refund.created_at).where(Refund.id == refund_id)
    ).one_or_none()
    session.commit()  # the read ends here: nothing is held while PayNow is called
    if row is None:
        return
    report.refunds_checked += 1
    if row.provider_refund_id is None:
        if row.created_at <= now - RESUME_WINDOW:
            report.refunds_unresolved += 1
            log.warning("paynow sync: refund without a PayNow id", extra={"refund_id": refund_id})
            return
        outbox_ids = submit_refund(session, client, refund_id, now=now)
        report.refunds_resumed += 1
    else:
        answer = client.refund_status(row.provider_refund_id)
        status = str((answer or {}).get("status") or "")
        outbox_ids = apply_refund_status(session, refund_id, status, now=now)
        session.commit()  # one refund per transaction, like the payments
        if outbox_ids is None:
            return
        report.refunds_updated += 1
    if outbox_ids:
        report.refunds_completed += 1
        report.outbox_ids.extend(outbox_ids)
