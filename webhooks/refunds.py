"""Refunds of PayNow payments: reserve the amount, have PayNow make the refund, follow its status.

- Only PayNow payments are refunded through Kwit. Stripe refunds are made in Stripe and arrive
  as charge.refunded (webhooks/ingest.py); external orders have no payment Kwit could refund.
- The refund row is committed before PayNow is called. Its id is derived from the API key, the
  Idempotency-Key and the request fingerprint, so a retry after a lost answer finds it again,
  and PayNow's Idempotency-Key is derived from that id, so PayNow makes the refund at most once.
- How long PayNow remembers an Idempotency-Key is not documented (see docs/protocols/paynow.md,
  idempotency): a refund whose create call got no answer is retried only within
  `RESUME_WINDOW` of its creation; after that a retry could refund twice.
- Refunds have no notifications; their status is polled (webhooks/paynow_sync.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Order, OrderStatus, Payment, Refund, RefundStatus, utcnow
from webhooks.errors import (
    OrderNotPaid,
    PaynowNotConfigured,
    PaynowRefused,
    PaynowUnavailable,
    RefundAlreadyRefused,
    RefundAtProvider,
    RefundExceedsBalance,
    RefundUnresolved,
    UnknownOrder,
)
from webhooks.events import Provider
from webhooks.payments import lock_payment, refund_completed
from webhooks.paynow_client import (
    PaynowClient,
    PaynowError,
    PaynowValidationError,
    idempotency_key_for,
)

__all__ = [
    "OPEN_REFUND_STATUSES",
    "RESUME_WINDOW",
    "apply_refund_status",
    "create_refund",
    "refund_id_for",
    "submit_refund",
]

log = logging.getLogger("kwit.refunds")

OPEN_REFUND_STATUSES = (RefundStatus.NEW, RefundStatus.PENDING)
RESUME_WINDOW = timedelta(hours=24)


def refund_id_for(api_key_id: str, idempotency_key: str, fingerprint: str) -> str:
    """A refund id derived from the request that asks for it: a retry finds the same refund."""
    seed = f"{api_key_id}\x00{idempotency_key}\x00{fingerprint}".encode()
    return base64.b32encode(hashlib.sha256(seed).digest()).decode()[:26]


def create_refund(
    session: Session,
    client: PaynowClient | None,
    order_id: str,
    refund_id: str,
    *,
    amount_minor: int,
    reason: str,
) -> tuple[Refund, list[str]]:
    """Refund (part of) a paid PayNow order, or resume the refund `refund_id` after a lost answer.

    Returns the refund and the outbox ids of its correction invoice, committed and still to be
    dispatched (only when PayNow reports the refund SUCCESSFUL at once). Raises a PaymentsError.
    """
    order = session.get(Order, order_id)
    if order is None:
        raise UnknownOrder(order_id)
    refund = session.get(Refund, refund_id)  # there already if this is a retry after a 502
    if refund is None:
        refund = _reserve(session, client, order, refund_id, amount_minor, reason, now=utcnow())
        # Committed before PayNow is called: a retry after a lost answer finds this row (and
        # its derived PayNow key) instead of reserving the amount a second time.
        session.commit()
    outbox_ids: list[str] = []
    if refund.provider_refund_id is None and refund.status is RefundStatus.NEW:
        outbox_ids = _resume(session, client, refund)
    elif refund.status is RefundStatus.FAILED and refund.provider_refund_id is None:
        raise RefundAlreadyRefused(refund.id)
    stored = session.scalars(
        sa.select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    ).one()
    return stored, outbox_ids


def _reserve(
    session: Session,
    client: PaynowClient | None,
    order: Order,
    refund_id: str,
    amount_minor: int,
    reason: str,
    *,
    now: datetime,
) -> Refund:
    """Check the order and the refundable balance, then add a NEW refund row (not committed)."""
    paid = session.scalars(
        sa.select(Payment)
        .where(Payment.order_id == order.id, Payment.paid_at.is_not(None))
        .order_by(Payment.paid_at)
    ).first()
    if paid is None or order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
        raise OrderNotPaid(order.status.value)
    if paid.provider != Provider.PAYNOW:
        raise RefundAtProvider(paid.provider)
    if client is None:
        raise PaynowNotConfigured()
    # The lock serialises refunds of one payment, so two at once cannot both fit the balance.
    payment = lock_payment(session, paid.provider, paid.provider_payment_id)
    assert payment is not None
    reserved = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment.id,
            Refund.status.not_in([RefundStatus.FAILED, RefundStatus.CANCELLED]),
        )
    )
    left = payment.amount_minor - int(reserved or 0)
    if amount_minor > left:
        raise RefundExceedsBalance(left)
    refund = Refund(
        id=refund_id,
        order_id=order.id,
        payment_id=payment.id,
        provider=Provider.PAYNOW.value,
        amount_minor=amount_minor,
        currency=payment.currency,
        reason=reason,
        status=RefundStatus.NEW,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    return refund


def _resume(session: Session, client: PaynowClient | None, refund: Refund) -> list[str]:
    """Send a committed NEW refund to PayNow (again, after a lost answer)."""
    if client is None:
        raise PaynowNotConfigured()
    if refund.created_at <= utcnow() - RESUME_WINDOW:
        raise RefundUnresolved(refund.id)  # PayNow may have forgotten the derived key by now
    try:
        return submit_refund(session, client, refund.id, now=utcnow())
    except PaynowValidationError as exc:
        raise PaynowRefused("refund", exc.error_types) from exc
    except PaynowError as exc:
        log.warning(
            "paynow create refund failed",
            extra={"refund_id": refund.id, "error": type(exc).__name__},
        )
        raise PaynowUnavailable("refund", refund_id=refund.id) from exc


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
    session.commit()  # no lock (on SQLite: no write lock) held while PayNow is called
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
        session.commit()  # refused: the amount is free again, whatever the caller does next
        raise
    refund = _lock_refund(session, refund_id)
    outbox_ids: list[str] = []
    if refund is not None and refund.provider_refund_id is None:
        refund.provider_refund_id = str(answer["refundId"])
        refund.updated_at = now
        status = str(answer.get("status") or "")
        session.flush()
        outbox_ids = apply_refund_status(session, refund_id, status, now=now) or []
    session.commit()  # PayNow's refund id is stored before anyone acts on the answer
    return outbox_ids


def apply_refund_status(
    session: Session, refund_id: str, status: str, *, now: datetime
) -> list[str] | None:
    """Store a polled refund status; None if nothing changed. The caller commits.

    Returns the outbox ids of the correction invoice when the refund just became SUCCESSFUL
    (else an empty list). Locks the payment, then the refund, like `create_refund`.
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


def _lock_refund(session: Session, refund_id: str) -> Refund | None:
    return session.scalars(
        sa.select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
