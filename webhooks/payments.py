"""Payment and order state changes shared by ingestion, the API and the PayNow sync.

Every function here works inside the caller's transaction and never commits: the caller holds
the row locks and decides when the change becomes durable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from compliance.retention import Retention, RetentionEngine
from models import (
    EventOutcome,
    Invoice,
    InvoiceKind,
    InvoiceState,
    Order,
    OrderStatus,
    OutboxItem,
    OutboxKind,
    OutboxState,
    Payment,
    Refund,
    RefundStatus,
    new_id,
)
from models.enums import PaynowPaymentStatus
from webhooks import paynow_states

__all__ = [
    "EventResult",
    "apply_paynow_status",
    "create_payment",
    "insert",
    "lock_payment",
    "mark_paid",
    "paid_tags",
    "refund_completed",
    "sale_dedupe_key",
]


@dataclass
class EventResult:
    """What applying an event (or a polled status) did; `outbox_ids` are to dispatch after commit."""

    outcome: EventOutcome
    reason: str | None = None
    order_id: str | None = None
    outbox_ids: list[str] = field(default_factory=list)


def insert(session: Session, model: Any) -> Any:
    """INSERT into the model's table with ON CONFLICT support (PostgreSQL or SQLite)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__)


def lock_payment(session: Session, provider: str, provider_payment_id: str) -> Payment | None:
    """The payment row, locked for the rest of the transaction (FOR UPDATE on PostgreSQL)."""
    return session.scalars(
        sa.select(Payment)
        .where(Payment.provider == provider, Payment.provider_payment_id == provider_payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def create_payment(
    session: Session,
    order: Order,
    provider: str,
    provider_payment_id: str,
    *,
    status: str | None,
    now: datetime,
    amount_minor: int | None = None,
) -> Payment:
    """Insert the payment unless a racing transaction did, and return it locked.

    `status` None means the provider has not reported one yet; the PayNow state machine
    treats that as the start.
    """
    values = {
        "id": new_id(),
        "order_id": order.id,
        "provider": provider,
        "provider_payment_id": provider_payment_id,
        "status": status,
        "amount_minor": amount_minor or order.gross_minor,
        "currency": order.currency,
    }
    stmt = insert(session, Payment).values(**values, created_at=now, updated_at=now)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["provider", "provider_payment_id"]))
    payment = lock_payment(session, provider, provider_payment_id)
    assert payment is not None
    return payment


def apply_paynow_status(
    session: Session,
    retention: RetentionEngine,
    order: Order,
    payment: Payment,
    *,
    status: str,
    modified_at: str | None,
    now: datetime,
) -> EventResult:
    """Apply a PayNow status to a locked payment through the state machine.

    Shared by notifications and `kwit paynow sync`, so a missed notification heals the same way.
    """
    decision = paynow_states.decide(
        payment.status, payment.provider_modified_at, status, modified_at
    )
    if decision is paynow_states.Decision.STALE:
        return EventResult(EventOutcome.STALE, "older_or_final", order.id)
    if decision is paynow_states.Decision.IGNORE:
        reason = "no_change" if paynow_states.is_known(status) else "unknown_status"
        return EventResult(EventOutcome.IGNORED, reason, order.id)
    payment.status = PaynowPaymentStatus(status)  # decide() applies only statuses it knows
    if modified_at is not None:
        payment.provider_modified_at = modified_at
    payment.updated_at = now
    result = EventResult(EventOutcome.APPLIED, None, order.id)
    if paynow_states.is_paid(status):
        result.outbox_ids.extend(
            mark_paid(session, retention, order, payment, paid_at=now, now=now)
        )
    elif paynow_states.is_final(status) and order.status is OrderStatus.PENDING:
        order.status = OrderStatus.FAILED
    return result


def mark_paid(
    session: Session,
    retention: RetentionEngine,
    order: Order,
    payment: Payment,
    *,
    paid_at: datetime,
    now: datetime,
) -> list[str]:
    """The payment just became paid: tag retention, and queue the order's one sale invoice."""
    payment.paid_at = paid_at
    payment_tag, order_tag = paid_tags(retention, paid_at, consumer=order.buyer_type == "consumer")
    payment.retention_basis, payment.retain_until = payment_tag.code, payment_tag.until
    order.retention_basis, order.retain_until = order_tag.code, order_tag.until
    order.status = OrderStatus.PAID
    order.updated_at = now
    return _queue_invoice(
        session,
        dedupe_key=sale_dedupe_key(order.id),
        order=order,
        payment=payment,
        gross_minor=payment.amount_minor,
        paid_at=paid_at,
        now=now,
    )


def paid_tags(
    retention: RetentionEngine, paid_at: datetime, *, consumer: bool
) -> tuple[Retention, Retention]:
    """Retention of a payment and its order from the moment it is paid (one rule, both paths)."""
    day = paid_at.date()
    return retention.payment(paid_at=day, consumer=consumer), retention.order(
        anchor=day, consumer=consumer
    )


def sale_dedupe_key(order_id: str) -> str:
    """The invoices.dedupe_key of an order's sale invoice: the database allows one per order."""
    return f"{InvoiceKind.SALE}:{order_id}"


def refund_completed(
    session: Session, order: Order, payment: Payment, refund: Refund, *, now: datetime
) -> list[str]:
    """A refund went through: update the order and queue its correction invoice."""
    refunded = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_minor), 0)).where(
            Refund.order_id == order.id, Refund.status == RefundStatus.SUCCESSFUL
        )
    )
    order.status = (
        OrderStatus.REFUNDED
        if int(refunded or 0) >= order.gross_minor
        else OrderStatus.PARTIALLY_REFUNDED
    )
    order.updated_at = now
    return _queue_invoice(
        session,
        dedupe_key=f"{InvoiceKind.CORRECTION}:{refund.id}",
        order=order,
        payment=payment,
        gross_minor=refund.amount_minor,
        paid_at=refund.completed_at or now,
        now=now,
        kind=InvoiceKind.CORRECTION,
        refund=refund,
    )


def _queue_invoice(
    session: Session,
    *,
    dedupe_key: str,
    order: Order,
    payment: Payment,
    gross_minor: int,
    paid_at: datetime,
    now: datetime,
    kind: InvoiceKind = InvoiceKind.SALE,
    refund: Refund | None = None,
) -> list[str]:
    """Insert the invoice row and its outbox row unless this invoice already exists."""
    invoice_id = new_id()
    stmt = insert(session, Invoice).values(
        id=invoice_id,
        order_id=order.id,
        kind=kind.value,
        dedupe_key=dedupe_key,
        refund_id=refund.id if refund else None,
        state=InvoiceState.PENDING.value,
        attempts=0,
        provider=payment.provider,
        provider_payment_id=payment.provider_payment_id,
        gross_minor=gross_minor,
        currency=order.currency,
        paid_at=paid_at,
        created_at=now,
        updated_at=now,
    )
    created = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Invoice.id)
    ).scalar_one_or_none()
    if created is None:
        return []
    outbox_id = new_id()
    session.execute(
        sa.insert(OutboxItem).values(
            id=outbox_id,
            kind=OutboxKind.ISSUE_INVOICE,
            ref_id=invoice_id,
            state=OutboxState.PENDING.value,
            due_at=now,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    return [outbox_id]
