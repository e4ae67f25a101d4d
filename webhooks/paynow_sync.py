"""Poll PayNow for what its notifications did not tell us (`kwit paynow sync`).

PayNow redelivers notifications, but a misconfigured notification URL, a long outage or a lost
delivery can leave a payment NEW/PENDING in Kwit while PayNow has long CONFIRMED it (paynow.md
§3 "Backstop"). Refunds have no notifications at all, so their status is only ever polled.

- Payments (provider paynow, status "", NEW or PENDING, untouched for `min_age`) are read with
  GET /v3/payments/{id}/status and applied through `ingest.apply_paynow_status`, the same state
  machine as notifications. A polled status has no `modifiedAt`, so it is applied with
  ``modified_at=None``: the time check is skipped and only reachability decides (CONFIRMED always
  applies; a final status is never left), and the stored `provider_modified_at` is kept, so a
  late notification is still compared with the last one that carried a timestamp. PayNow's
  status endpoint is its current truth, so skipping the time check cannot move a payment back.
- Refunds with a PayNow id and status NEW/PENDING are read with GET /v3/refunds/{id}/status. On
  SUCCESSFUL, `completed_at` is set and the correction invoice is queued (`ingest.refund_completed`).
- A refund without a PayNow id is one whose create call got no answer (Kwit answered 502). It is
  retried with the same derived Idempotency-Key, so PayNow creates it at most once — but only
  within `RESUME_WINDOW` of its creation: how long PayNow remembers keys is not documented, and
  after that a retry could refund twice. Older ones are counted as unresolved for a human.

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

from models import EventOutcome, Order, Payment, Refund, RefundStatus
from webhooks.ingest import IngestContext, apply_paynow_status, lock_payment, refund_completed
from webhooks.paynow_client import (
    PaynowAuthError,
    PaynowClient,
    PaynowError,
    PaynowValidationError,
    idempotency_key_for,
)

__all__ = [
    "OPEN_PAYMENT_STATUSES",
    "RESUME_WINDOW",
    "SyncReport",
    "apply_refund_status",
    "submit_refund",
    "sync",
]

log = logging.getLogger("kwit.paynow_sync")

OPEN_PAYMENT_STATUSES = ("", "NEW", "PENDING")
OPEN_REFUND_STATUSES = (RefundStatus.NEW, RefundStatus.PENDING)
RESUME_WINDOW = timedelta(hours=24)
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
            Payment.provider == "paynow",
            Payment.status.in_(OPEN_PAYMENT_STATUSES),
            Payment.updated_at <= cutoff,
        )
        .order_by(Payment.updated_at)
        .limit(limit)
    ).all()
    refund_ids = session.scalars(
        sa.select(Refund.id)
        .where(
            Refund.provider == "paynow",
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
    provider_payment_id = session.scalar(
        sa.select(Payment.provider_payment_id).where(Payment.id == payment_id)
    )
    session.commit()
    if provider_payment_id is None:
        return
    report.payments_checked += 1
    answer = client.payment_status(provider_payment_id)
    status = str((answer or {}).get("status") or "")
    payment = lock_payment(session, "paynow", provider_payment_id)
    order = session.get(Order, payment.order_id) if payment else None
    if payment is None or order is None or not status:
        session.commit()
        return
    result = apply_paynow_status(
        session, ctx, order, payment, status=status, modified_at=None, now=now
    )
    if result.outcome is not EventOutcome.APPLIED:
        # Checked, unchanged: the next check waits another min_age, and payments still open
        # take turns instead of the oldest filling every run's limit.
        payment.updated_at = now
    session.commit()
    if result.outcome is EventOutcome.APPLIED:
        report.payments_updated += 1
        report.payments_paid += status == "CONFIRMED"
        report.outbox_ids.extend(result.outbox_ids)
        log.info(
            "paynow sync: payment status applied",
            extra={"payment_id": payment_id, "status": status},
        )


def _sync_refund(
    session: Session, client: PaynowClient, refund_id: str, now: datetime, report: SyncReport
) -> None:
    row = session.execute(
        sa.select(Refund.provider_refund_id, Refund.created_at).where(Refund.id == refund_id)
    ).one_or_none()
    session.commit()
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
        session.commit()
        if outbox_ids is None:
            return
        report.refunds_updated += 1
    if outbox_ids:
        report.refunds_completed += 1
        report.outbox_ids.extend(outbox_ids)


def apply_refund_status(
    session: Session, refund_id: str, status: str, *, now: datetime
) -> list[str] | None:
    """Store a polled refund status; None if nothing changed. The caller commits.

    Returns the outbox ids of the correction invoice when the refund just became SUCCESSFUL
    (else an empty list). Locks the payment, then the refund, like the refunds API.
    """
    try:
        new = RefundStatus(status)
    except ValueError:
        return None  # an unknown status is ignored, like unknown payment statuses
    key = session.execute(
        sa.select(Payment.provider, Payment.provider_payment_id)
        .join(Refund, Refund.payment_id == Payment.id)
        .where(Refund.id == refund_id)
    ).one_or_none()
    if key is None:
        return None
    payment = lock_payment(session, key.provider, key.provider_payment_id)
    refund = _lock_refund(session, refund_id)
    if payment is None or refund is None or refund.status not in OPEN_REFUND_STATUSES:
        return None
    if new == refund.status or new is RefundStatus.NEW:
        refund.updated_at = now  # checked: wait min_age before the next check
        return None  # nothing new, and never back from PENDING to NEW
    refund.status = new
    refund.updated_at = now
    if new is not RefundStatus.SUCCESSFUL:
        return []
    refund.completed_at = now
    order = session.get(Order, refund.order_id)
    assert order is not None
    return refund_completed(session, order, payment, refund, now=now)


def submit_refund(
    session: Session, client: PaynowClient, refund_id: str, *, now: datetime
) -> list[str]:
    """Create at PayNow a Kwit refund that has no PayNow id yet; commits.

    The Idempotency-Key is derived from the refund id, so a retry (the API's or the sync's)
    gets the refund PayNow may already have made, never a second one. Raises PaynowError; a
    refusal (PaynowValidationError) first marks the refund FAILED. Returns the outbox ids of the
    correction invoice if PayNow reports the refund SUCCESSFUL at once.
    """
    row = session.execute(
        sa.select(Refund.amount_minor, Refund.reason, Payment.provider_payment_id)
        .join(Payment, Refund.payment_id == Payment.id)
        .where(Refund.id == refund_id, Refund.provider_refund_id.is_(None))
    ).one_or_none()
    session.commit()  # nothing held during the call
    if row is None:
        return []
    try:
        answer = client.create_refund(
            row.provider_payment_id,
            amount_minor=row.amount_minor,
            reason=row.reason,
            idempotency_key=idempotency_key_for("refund", refund_id),
        )
    except PaynowValidationError:
        refund = _lock_refund(session, refund_id)
        if refund is not None and refund.provider_refund_id is None:
            refund.status = RefundStatus.FAILED
            refund.updated_at = now
        session.commit()
        raise
    refund = _lock_refund(session, refund_id)
    outbox_ids: list[str] = []
    if refund is not None and refund.provider_refund_id is None:
        refund.provider_refund_id = str(answer["refundId"])
        refund.updated_at = now
        status = str(answer.get("status") or "")
        session.flush()
        outbox_ids = apply_refund_status(session, refund_id, status, now=now) or []
    session.commit()
    return outbox_ids


def _lock_refund(session: Session, refund_id: str) -> Refund | None:
    return session.scalars(
        sa.select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
