"""Record a verified provider event exactly once, in one transaction the caller commits.

1. Insert the webhook_events row; a conflict on (provider, event_key) is a duplicate.
2. Lock the payment row (SELECT … FOR UPDATE; SQLite serialises whole transactions instead).
3. Apply the monotonic state machine.
4. On the first transition to paid, create the pending invoice row and its outbox row.

The dedupe row means "seen", not "done": the work still to do lives in the outbox, which the
sweeper re-enqueues whatever happens to Redis (otherwise an event recorded while Redis was
down would be deduplicated and never acted on).

The state changes themselves live in webhooks/payments.py, shared with the API and the PayNow
sync. On PostgreSQL, a paid Stripe event for an order Kwit has never seen takes the
one-statement path of webhooks/ingest_fast.py instead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.retention import RetentionEngine
from models import EventOutcome, Order, OrderStatus, Refund, RefundStatus, WebhookEvent, new_id
from models.enums import StripePaymentStatus
from models.vault import Vault
from webhooks import ingest_fast
from webhooks.events import EventKind, Provider, ProviderEvent
from webhooks.payments import (
    EventResult,
    apply_paynow_status,
    create_payment,
    insert,
    lock_payment,
    mark_paid,
    paid_tags,
    refund_completed,
)

__all__ = ["EventResult", "IngestContext", "record"]

log = logging.getLogger("kwit.ingest")


@dataclass(frozen=True)
class IngestContext:
    """What ingestion needs besides the session: built once per process from Settings."""

    vault: Vault
    retention: RetentionEngine
    default_vat_rate: str = "23"
    stripe_livemode: bool = False


def record(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, body_sha256: str, now: datetime
) -> EventResult:
    """Record `event` and apply it. The caller commits, then enqueues `outbox_ids`.

    (The one-statement fast path commits on its own connection; the session stays untouched.)
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql and ingest_fast.applies(event, ctx.stripe_livemode):
        fast = ingest_fast.try_record(
            session.get_bind(), _fast_values(ctx, event, body_sha256=body_sha256, now=now), now=now
        )
        if fast is not None and fast.duplicate:
            return EventResult(EventOutcome.DUPLICATE)
        if fast is not None:
            assert fast.outbox_id is not None  # try_record returns an id whenever it applied
            return EventResult(EventOutcome.APPLIED, None, fast.order_id, [fast.outbox_id])
    event_id = _insert_event(session, ctx, event, body_sha256=body_sha256, now=now)
    if event_id is None:
        return EventResult(EventOutcome.DUPLICATE)
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
    stmt = insert(session, WebhookEvent).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["provider", "event_key"])
    return session.execute(stmt.returning(WebhookEvent.id)).scalar_one_or_none()


def _fast_values(
    ctx: IngestContext, event: ProviderEvent, *, body_sha256: str, now: datetime
) -> dict[str, Any]:
    """Everything the one-statement path writes, computed here in Python."""
    order = _stripe_order_values(ctx, event)
    paid_at = event.occurred_at or now
    event_tag = ctx.retention.webhook_event(received_at=now)
    consumer = order["buyer_type"] == "consumer"
    payment_tag, order_tag = paid_tags(ctx.retention, paid_at, consumer=consumer)
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
) -> EventResult:
    if event.kind is EventKind.IGNORED:
        return EventResult(EventOutcome.IGNORED, "unsupported_event")
    if event.livemode is not None and event.livemode != ctx.stripe_livemode:
        return EventResult(EventOutcome.IGNORED, "livemode_mismatch")
    match event.kind:
        case EventKind.PAYMENT_STATUS:
            return _paynow_status(session, ctx, event, now=now)
        case EventKind.PAID:
            return _stripe_paid(session, ctx, event, now=now)
        case EventKind.REFUNDED:
            return _stripe_refunded(session, ctx, event, now=now)
    return EventResult(EventOutcome.IGNORED, "unsupported_event")


# ---------------------------------------------------------------- PayNow


def _paynow_status(
    session: Session, ctx: IngestContext, event: ProviderEvent, *, now: datetime
) -> EventResult:
    order = session.get(Order, event.order_ref) if event.order_ref else None
    if order is None or event.provider_payment_id is None or event.status is None:
        return EventResult(EventOutcome.IGNORED, "unknown_order")
    payment = lock_payment(session, Provider.PAYNOW, event.provider_payment_id)
    if payment is None:
        # A payment Kwit has not seen: PayNow reuses externalId for a retried payment.
        payment = create_payment(
            session, order, Provider.PAYNOW, event.provider_payment_id, status=None, now=now
        )
    if payment.order_id != order.id:
        return EventResult(EventOutcome.IGNORED, "payment_of_another_order")
    return apply_paynow_status(
        session,
        ctx.retention,
        order,
        payment,
        status=event.status,
        modified_at=event.modified_at,
        now=now,
    )


# ---------------------------------------------------------------- Stripe


def _stripe_order_values(ctx: IngestContext, event: ProviderEvent) -> dict[str, Any]:
    """The columns of an order created from a Stripe event, billing encrypted.

    The Stripe invoice (or Checkout session) id becomes the external_ref, the Stripe customer
    the customer_ref; a line without a VAT rate gets the configured default.
    """
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
) -> EventResult:
    if event.provider_payment_id is None or event.amount_minor is None:
        return EventResult(EventOutcome.IGNORED, "no_payment")
    # The payment first: a second event about money Kwit already recorded (invoice.paid and
    # checkout.session.completed for one subscription payment) must not create a second order
    # (see docs/protocols/stripe.md, pitfalls seen in peers).
    payment = lock_payment(session, Provider.STRIPE, event.provider_payment_id)
    order = session.get(Order, payment.order_id) if payment else _find_order(session, event)
    if order is None:
        if event.billing is None or event.external_ref is None:
            # e.g. payment_intent.succeeded for an order Kwit never saw: nothing to invoice.
            return EventResult(EventOutcome.IGNORED, "unknown_order")
        order = _create_order_from_stripe(session, ctx, event, now=now)
    if payment is None:
        payment = create_payment(
            session,
            order,
            Provider.STRIPE,
            event.provider_payment_id,
            status=StripePaymentStatus.PENDING,
            amount_minor=event.amount_minor,
            now=now,
        )
    if payment.status == StripePaymentStatus.PAID or order.status is not OrderStatus.PENDING:
        return EventResult(EventOutcome.STALE, "already_paid", order.id)
    payment.status = StripePaymentStatus.PAID
    payment.updated_at = now
    paid_at = event.occurred_at or now
    result = EventResult(EventOutcome.APPLIED, None, order.id)
    outbox_ids = mark_paid(session, ctx.retention, order, payment, paid_at=paid_at, now=now)
    result.outbox_ids.extend(outbox_ids)
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
    """An order for a Stripe invoice or Checkout session Kwit has not seen."""
    values = {
        "id": new_id(),
        **_stripe_order_values(ctx, event),
        "provider": Provider.STRIPE.value,
        "status": OrderStatus.PENDING.value,
        "created_at": now,
        "updated_at": now,
    }
    # Two different events for the same Stripe invoice may race here: the unique external_ref
    # lets exactly one insert win; the loser reads the winner's row.
    stmt = (
        insert(session, Order)
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
) -> EventResult:
    payment = (
        lock_payment(session, Provider.STRIPE, event.provider_payment_id)
        if event.provider_payment_id
        else None
    )
    if payment is None or event.refunded_minor is None:
        return EventResult(EventOutcome.IGNORED, "unknown_payment")
    order = session.get(Order, payment.order_id)
    assert order is not None
    already = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment.id, Refund.status == RefundStatus.SUCCESSFUL
        )
    )
    amount = min(event.refunded_minor, payment.amount_minor) - int(already or 0)
    if amount <= 0:
        return EventResult(EventOutcome.STALE, "already_refunded", order.id)
    refund = Refund(
        order_id=order.id,
        payment_id=payment.id,
        provider=Provider.STRIPE.value,
        provider_refund_id=event.refund_id or f"{event.event_key}",
        amount_minor=amount,
        currency=payment.currency,
        reason="provider",
        status=RefundStatus.SUCCESSFUL,
        completed_at=event.occurred_at or now,
    )
    session.add(refund)
    session.flush()
    result = EventResult(EventOutcome.APPLIED, None, order.id)
    result.outbox_ids.extend(refund_completed(session, order, payment, refund, now=now))
    return result
