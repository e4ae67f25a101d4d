"""Record a verified provider event exactly once, in one transaction the caller commits.

1. Insert the webhook_events row; a conflict on (provider, event_key) is a duplicate.
2. Lock the payment row (SELECT … FOR UPDATE; SQLite serialises whole transactions instead).
3. Apply the monotonic state machine.
4. On the first transition to paid, create the pending invoice row and its outbox row.

The dedupe row means "seen", not "done": the work still to do lives in the outbox, which the
sweeper re-enqueues whatever happens to Redis (dj-stripe #832 is what happens otherwise).
"""

from __future__ import annotations

import json
import logging
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
    Order,
    OrderStatus,
    OutboxItem,
    OutboxKind,
    Payment,
    Refund,
    RefundStatus,
    WebhookEvent,
    new_id,
)
from models.vault import Vault
from webhooks import ingest_fast, paynow_states
from webhooks.events import EventKind, ProviderEvent

log = logging.getLogger("kwit.ingest")

STRIPE_PAID = "paid"


@dataclass(frozen=True)
class IngestContext:
    """What ingestion needs besides the session: built once per process from Settings."""

    vault: Vault
    retention: RetentionEngine
    default_vat_rate: str = "23"
    stripe_livemode: bool = False


@dataclass
class IngestResult:
    outcome: EventOutcome
    reason: str | None = None
    order_id: str | None = None
    outbox_ids: list[str] = field(default_factory=list)


def record(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, body_sha256: str, now: datetime
) -> IngestResult:
    """Record `event` and apply it. The caller commits, then enqueues `outbox_ids`.

    (The one-statement fast path commits on its own connection; the session stays untouched.)
    """
    if ingest_fast.applies(event, ctx.stripe_livemode) and _dialect(session) == "postgresql":
        fast = ingest_fast.try_record(
            session.get_bind(), _fast_values(ctx, event, body_sha256=body_sha256, now=now), now=now
        )
        if fast is not None and fast.duplicate:
            return IngestResult(EventOutcome.DUPLICATE)
        if fast is not None:
            assert fast.outbox_id is not None  # try_record returns an id whenever it applied
            return IngestResult(EventOutcome.APPLIED, None, fast.order_id, [fast.outbox_id])
    event_id = _insert_event(session, ctx, event, body_sha256=body_sha256, now=now)
    if event_id is None:
        return IngestResult(EventOutcome.DUPLICATE)
    result = _apply(session, ctx, event, now=now)
    if result.outcome is not EventOutcome.APPLIED or result.order_id:
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(outcome=result.outcome, reason=result.reason, order_id=result.order_id)
        )
    if result.outcome is EventOutcome.IGNORED:
        log.info(
            "webhook ignored",
            extra={
                "provider": event.provider.value,
                "event_type": event.event_type,
                "reason": result.reason,
            },
        )
    return result


def _insert_event(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, body_sha256: str, now: datetime
) -> str | None:
    tag = ctx.retention.webhook_event(received_at=now)
    values = {
        "id": new_id(),
        "provider": event.provider.value,
        "event_key": event.event_key,
        "event_type": event.event_type[:64],
        "provider_payment_id": event.provider_payment_id,
        "body_sha256": body_sha256,
        "outcome": EventOutcome.APPLIED.value,
        "received_at": now,
        "retention_basis": tag.code,
        "retain_until": tag.until,
    }
    insert = _dialect_insert(session, WebhookEvent).values(**values)
    stmt = insert.on_conflict_do_nothing(index_elements=["provider", "event_key"])
    return session.execute(stmt.returning(WebhookEvent.id)).scalar_one_or_none()


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _dialect_insert(session: Session, model: Any) -> Any:
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    return insert(model.__table__)


def _fast_values(
    ctx: IngestContext, event: ProviderEvent, *, body_sha256: str, now: datetime
) -> dict[str, Any]:
    """Everything the one-statement path writes, computed here in Python."""
    order = _stripe_order_values(ctx, event)
    paid_at = event.occurred_at or now
    event_tag = ctx.retention.webhook_event(received_at=now)
    payment_tag, order_tag = _paid_tags(ctx, paid_at, consumer=order["buyer_type"] == "consumer")
    return {
        **order,
        "items": json.dumps(order["items"], ensure_ascii=False),
        "amount": order["gross_minor"],
        "ppid": event.provider_payment_id,
        "event_key": event.event_key,
        "event_type": event.event_type[:64],
        "body_sha256": body_sha256,
        "paid_at": paid_at,
        "event_basis": event_tag.code,
        "event_until": event_tag.until,
        "payment_basis": payment_tag.code,
        "payment_until": payment_tag.until,
        "order_basis": order_tag.code,
        "order_until": order_tag.until,
    }


def _apply(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, now: datetime
) -> IngestResult:
    if event.kind is EventKind.IGNORED:
        return IngestResult(EventOutcome.IGNORED, "unsupported_event")
    if event.livemode is not None and event.livemode != ctx.stripe_livemode:
        return IngestResult(EventOutcome.IGNORED, "livemode_mismatch")
    match event.kind:
        case EventKind.PAYMENT_STATUS:
            return _paynow_status(session, ctx, event, now=now)
        case EventKind.PAID:
            return _stripe_paid(session, ctx, event, now=now)
        case EventKind.REFUNDED:
            return _stripe_refunded(session, ctx, event, now=now)
    return IngestResult(EventOutcome.IGNORED, "unsupported_event")


# ---------------------------------------------------------------- PayNow


def _paynow_status(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, now: datetime
) -> IngestResult:
    order = session.get(Order, event.order_ref) if event.order_ref else None
    if order is None or event.provider_payment_id is None or event.status is None:
        return IngestResult(EventOutcome.IGNORED, "unknown_order")
    payment = lock_payment(session, "paynow", event.provider_payment_id)
    if payment is None:
        # A payment Kwit has not seen: PayNow reuses externalId for a retried payment.
        payment = _create_payment(
            session, order, "paynow", event.provider_payment_id, status=None, now=now
        )
    if payment.order_id != order.id:
        return IngestResult(EventOutcome.IGNORED, "payment_of_another_order")
    return apply_paynow_status(
        session, ctx, order, payment, status=event.status, modified_at=event.modified_at, now=now
    )


def apply_paynow_status(
    session: Session,
    ctx: IngestContext,
    order: Order,
    payment: Payment,
    *,
    status: str,
    modified_at: str | None,
    now: datetime,
) -> IngestResult:
    """Apply a PayNow status to a locked payment through the state machine.

    Shared by notifications and `kwit paynow sync`, so a missed notification heals the same way.
    """
    first = payment.status if payment.status != "" else None
    decision = paynow_states.decide(first, payment.provider_modified_at, status, modified_at)
    if decision is paynow_states.Decision.STALE:
        return IngestResult(EventOutcome.STALE, "older_or_final", order.id)
    if decision is paynow_states.Decision.IGNORE:
        known = status in paynow_states.TRANSITIONS or status in paynow_states.FINAL
        return IngestResult(
            EventOutcome.IGNORED, "no_change" if known else "unknown_status", order.id
        )
    payment.status = status
    if modified_at is not None:
        payment.provider_modified_at = modified_at
    payment.updated_at = now
    result = IngestResult(EventOutcome.APPLIED, None, order.id)
    if paynow_states.is_paid(status):
        result.outbox_ids.extend(mark_paid(session, ctx, order, payment, paid_at=now, now=now))
    elif paynow_states.is_final(status) and order.status is OrderStatus.PENDING:
        order.status = OrderStatus.FAILED
    return result


# ---------------------------------------------------------------- Stripe


def _stripe_order_values(ctx: IngestContext, event: ProviderEvent) -> dict[str, Any]:
    """The columns of an order created from a Stripe event (DESIGN §5), billing encrypted."""
    assert event.billing is not None
    assert event.external_ref is not None
    assert event.amount_minor is not None
    items = [
        {
            "name": line.name,
            "quantity": line.quantity,
            "unit_gross_minor": line.unit_gross_minor,
            "vat_rate": line.vat_rate or ctx.default_vat_rate,
        }
        for line in event.lines
    ] or [
        {
            "name": f"Płatność {event.external_ref}",
            "quantity": 1,
            "unit_gross_minor": event.amount_minor,
            "vat_rate": ctx.default_vat_rate,
        }
    ]
    business = bool(event.billing.nip or event.billing.tax_id)
    return {
        "external_ref": event.external_ref,
        "customer_ref": event.customer_ref or f"stripe:{event.external_ref}",
        "currency": (event.currency or "PLN").upper(),
        "gross_minor": event.amount_minor,
        "items": items,
        "buyer_type": "business" if business else "consumer",
        "billing": ctx.vault.encrypt(event.billing.as_dict()),
    }


def _stripe_paid(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, now: datetime
) -> IngestResult:
    if event.provider_payment_id is None or event.amount_minor is None:
        return IngestResult(EventOutcome.IGNORED, "no_payment")
    # The payment first: a second event about money Kwit already recorded (invoice.paid and
    # checkout.session.completed, pay-rails #612) must not create a second order.
    payment = lock_payment(session, "stripe", event.provider_payment_id)
    order = session.get(Order, payment.order_id) if payment else _find_order(session, event)
    if order is None:
        if event.billing is None or event.external_ref is None:
            # e.g. payment_intent.succeeded for an order Kwit never saw: nothing to invoice.
            return IngestResult(EventOutcome.IGNORED, "unknown_order")
        order = _create_order_from_stripe(session, ctx, event, now=now)
    if payment is None:
        payment = _create_payment(
            session,
            order,
            "stripe",
            event.provider_payment_id,
            status="pending",
            amount_minor=event.amount_minor,
            now=now,
        )
    if payment.status == STRIPE_PAID or order.status is not OrderStatus.PENDING:
        return IngestResult(EventOutcome.STALE, "already_paid", order.id)
    payment.status = STRIPE_PAID
    payment.updated_at = now
    paid_at = event.occurred_at or now
    result = IngestResult(EventOutcome.APPLIED, None, order.id)
    result.outbox_ids.extend(mark_paid(session, ctx, order, payment, paid_at=paid_at, now=now))
    return result


def _find_order(session: Session, event: ProviderEvent) -> Order | None:
    if event.order_ref:
        order = session.get(Order, event.order_ref)
        if order is None:
            order = session.scalar(sa.select(Order).where(Order.external_ref == event.order_ref))
        if order is not None:
            return order
    if event.external_ref:
        return session.scalar(sa.select(Order).where(Order.external_ref == event.external_ref))
    return None


def _create_order_from_stripe(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, now: datetime
) -> Order:
    """An order for a Stripe invoice or Checkout session Kwit has not seen (DESIGN §5)."""
    values = {
        "id": new_id(),
        **_stripe_order_values(ctx, event),
        "provider": "stripe",
        "status": OrderStatus.PENDING.value,
        "created_at": now,
        "updated_at": now,
    }
    # Two different events for the same Stripe invoice may race here: the unique external_ref
    # lets exactly one insert win; the loser reads the winner's row.
    stmt = (
        _dialect_insert(session, Order)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["external_ref"])
    )
    session.execute(stmt)
    return session.scalars(
        sa.select(Order)
        .where(Order.external_ref == event.external_ref)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _stripe_refunded(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, now: datetime
) -> IngestResult:
    payment = (
        lock_payment(session, "stripe", event.provider_payment_id)
        if event.provider_payment_id
        else None
    )
    if payment is None or event.refunded_minor is None:
        return IngestResult(EventOutcome.IGNORED, "unknown_payment")
    order = session.get(Order, payment.order_id)
    assert order is not None
    already = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment.id, Refund.status == RefundStatus.SUCCESSFUL
        )
    )
    amount = min(event.refunded_minor, payment.amount_minor) - int(already or 0)
    if amount <= 0:
        return IngestResult(EventOutcome.STALE, "already_refunded", order.id)
    refund = Refund(
        order_id=order.id,
        payment_id=payment.id,
        provider="stripe",
        provider_refund_id=event.refund_id or f"{event.event_key}",
        amount_minor=amount,
        currency=payment.currency,
        reason="provider",
        status=RefundStatus.SUCCESSFUL,
        completed_at=event.occurred_at or now,
    )
    session.add(refund)
    session.flush()
    result = IngestResult(EventOutcome.APPLIED, None, order.id)
    result.outbox_ids.extend(refund_completed(session, order, payment, refund, now=now))
    return result


# ---------------------------------------------------------------- shared steps


def lock_payment(session: Session, provider: str, provider_payment_id: str) -> Payment | None:
    """The payment row, locked for the rest of the transaction (FOR UPDATE on PostgreSQL)."""
    return session.scalars(
        sa.select(Payment)
        .where(Payment.provider == provider, Payment.provider_payment_id == provider_payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _create_payment(
    session: Session,
    order: Order,
    provider: str,
    provider_payment_id: str,
    *,
    status: str | None,
    now: datetime,
    amount_minor: int | None = None,
) -> Payment:
    # status "" means "no provider status yet" (the column is NOT NULL); the PayNow state
    # machine treats it as the start.
    values = {
        "id": new_id(),
        "order_id": order.id,
        "provider": provider,
        "provider_payment_id": provider_payment_id,
        "status": status or "",
        "amount_minor": amount_minor or order.gross_minor,
        "currency": order.currency,
    }
    stmt = _dialect_insert(session, Payment).values(**values, created_at=now, updated_at=now)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["provider", "provider_payment_id"]))
    payment = lock_payment(session, provider, provider_payment_id)
    assert payment is not None
    return payment


def mark_paid(
    session: Session,
    ctx: IngestContext,
    order: Order,
    payment: Payment,
    *,
    paid_at: datetime,
    now: datetime,
) -> list[str]:
    """The payment just became paid: tag retention, and queue the order's one sale invoice."""
    payment.paid_at = paid_at
    payment_tag, order_tag = _paid_tags(ctx, paid_at, consumer=order.buyer_type == "consumer")
    payment.retention_basis, payment.retain_until = payment_tag.code, payment_tag.until
    order.retention_basis, order.retain_until = order_tag.code, order_tag.until
    order.status = OrderStatus.PAID
    order.updated_at = now
    return _queue_invoice(
        session,
        dedupe_key=f"sale:{order.id}",
        order=order,
        payment=payment,
        gross_minor=payment.amount_minor,
        paid_at=paid_at,
        now=now,
    )


def _paid_tags(
    ctx: IngestContext, paid_at: datetime, *, consumer: bool
) -> tuple[Retention, Retention]:
    """Retention of a payment and its order from the moment it is paid (one rule, both paths)."""
    day = paid_at.date()
    return ctx.retention.payment(paid_at=day, consumer=consumer), ctx.retention.order(
        anchor=day, consumer=consumer
    )


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
        dedupe_key=f"correction:{refund.id}",
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
    stmt = _dialect_insert(session, Invoice).values(
        id=invoice_id,
        order_id=order.id,
        kind=kind.value,
        dedupe_key=dedupe_key,
        refund_id=refund.id if refund else None,
        state="pending",
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
            state="pending",
            due_at=now,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    return [outbox_id]
