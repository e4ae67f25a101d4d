"""Retention tags for everything linked to one order: ``retention_basis`` and ``retain_until``.

``retag_order`` recomputes ``retention_basis`` and ``retain_until`` for an order, its paid
payments, completed refunds, issued invoices (sale invoices extended by their corrections,
docs/retention-law.md §2.6) and its webhook events, and writes them. A row whose clock has not
started (unpaid payment, refund in progress, invoice not issued yet) stays untagged: NULL means
"keep, basis unknown" and the purge never selects it. The dates reproduce the worked examples
of docs/retention-law.md §8 (tests/integration/test_retention_tags.py).

Decisions (review with the tax adviser / DPO):

- Order anchor = the later of the last payment's ``paid_at`` and the last completed refund
  (Civil Code art. 118/120 run from the last settlement). The same anchor is the payment's
  civil-claims ``contract_anchor`` (worked example 4).
- A completed refund is one with status SUCCESSFUL; its date is ``completed_at``, else the
  time we learnt it (``updated_at``).
- Tax point of an invoice: the later of sale date and issue date. The real VAT tax point
  (VAT Act art. 19a) may be either; taking the later one can only lengthen retention.
- A webhook event that applied a transition (outcome ``applied``) keeps its id with the paid
  payment it belongs to (retention-law.md §6, ``webhook_event_linked``); every other event
  gets the rolling 90-day rule.
- After a GDPR erasure request (order ``restricted_at`` set) an internal policy no longer counts
  for the order, payments, refunds and invoices: art. 17(3) exempts only legal obligations and
  legal claims, not a business preference. Those rows are recomputed with the statutory rules
  alone, newly tagged rows inherit the restriction, and the customer stub is extended to cover
  them (retention-law.md §5.6 step 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.restriction import restriction_reason
from compliance.retention import Retention, RetentionEngine
from compliance.statutes import day_of
from models import (
    CustomerStub,
    EventOutcome,
    Invoice,
    InvoiceKind,
    InvoiceState,
    Order,
    Payment,
    Refund,
    RefundStatus,
    WebhookEvent,
)

__all__ = [
    "STUB_CODE",
    "OrderRetention",
    "compute_order",
    "linked_records",
    "retag_order",
    "tag_webhook_event",
]

STUB_CODE = "GDPR_17_3_B_STUB"


@dataclass
class OrderRetention:
    """Computed retention of one order's records; a missing id means "clock not started"."""

    order: Retention | None = None
    payments: dict[str, Retention] = field(default_factory=dict)
    refunds: dict[str, Retention] = field(default_factory=dict)
    invoices: dict[str, Retention] = field(default_factory=dict)
    events: dict[str, Retention] = field(default_factory=dict)

    def dated(self) -> list[Retention]:
        """Retentions of the order, payments, refunds and invoices (the stub's links)."""
        rows = [*self.payments.values(), *self.refunds.values(), *self.invoices.values()]
        return ([self.order] if self.order else []) + rows


def tag_webhook_event(
    engine: RetentionEngine, received_at: datetime | date, payment: Retention | None = None
) -> tuple[str, date]:
    """(basis, retain_until) of a webhook event: 90 days, or with its applied payment.

    See docs/retention-law.md §6.
    """
    if payment is None:
        result = engine.webhook_event(received_at=received_at)
    else:
        result = engine.webhook_event_linked(received_at, payment)
    return result.code, result.until


Linked = tuple[list[Payment], list[Refund], list[Invoice], list[WebhookEvent]]


def compute_order(
    session: Session, engine: RetentionEngine, order_id: str, linked: Linked | None = None
) -> OrderRetention:
    """Retention of every record linked to ``order_id``, without writing anything.

    `linked` is `linked_records(session, order)` when the caller has already loaded them.
    """
    order = session.get(Order, order_id)
    if order is None:
        raise LookupError(f"no order {order_id!r}")
    # Art. 17(3): after an erasure request only statutory rules keep the records.
    floor = engine.without_policy() if order.restricted_at else engine
    consumer = order.buyer_type == "consumer"
    payments, refunds, invoices, events = linked or linked_records(session, order)
    out = OrderRetention()

    issued = [i for i in invoices if i.state == InvoiceState.ISSUED and i.issue_date]
    corrections = {
        i.id: floor.correction_invoice(
            issue_date=i.issue_date, tax_point=_tax_point(i), ksef_accepted=bool(i.ksef_number)
        )
        for i in issued
        if i.kind == InvoiceKind.CORRECTION
    }
    sales = {
        i.id: floor.invoice(
            issue_date=i.issue_date,
            tax_point=_tax_point(i),
            ksef_accepted=bool(i.ksef_number),
            # retention-law.md §2.6: the original is kept at least as long as each correction.
            corrections=[
                corrections[c.id]
                for c in issued
                if c.id in corrections and c.corrects_invoice_id == i.id
            ],
        )
        for i in issued
        if i.kind == InvoiceKind.SALE
    }
    out.invoices = {**corrections, **sales}
    sale = next(iter(sales.values()), None)

    paid = [p for p in payments if p.paid_at is not None]
    done = [r for r in refunds if r.status == RefundStatus.SUCCESSFUL]
    days = [day_of(p.paid_at) for p in paid if p.paid_at] + [_refundday_of(r) for r in done]
    anchor = max(days) if days else None
    if paid and anchor is not None:
        out.order = floor.order(anchor=anchor, consumer=consumer)
        for p in paid:
            assert p.paid_at is not None
            out.payments[p.id] = floor.payment(
                paid_at=day_of(p.paid_at), consumer=consumer, contract_anchor=anchor, invoice=sale
            )
    for r in done:
        correction = next(
            (corrections[i.id] for i in issued if i.refund_id == r.id and i.id in corrections),
            None,
        )
        out.refunds[r.id] = floor.refund(
            refunded_at=_refundday_of(r), consumer=consumer, correction=correction
        )

    by_pid = {p.provider_payment_id: out.payments[p.id] for p in paid}
    latest = max(paid, key=lambda p: p.paid_at or datetime.min.replace(tzinfo=UTC), default=None)
    for ev in events:
        linked = None
        if ev.outcome == EventOutcome.APPLIED and paid:
            # An applied event without a matching payment id belongs to the order's payment.
            linked = by_pid.get(ev.provider_payment_id or "") or (
                out.payments[latest.id] if latest else None
            )
        if linked is None:
            out.events[ev.id] = engine.webhook_event(received_at=ev.received_at)
        else:
            out.events[ev.id] = engine.webhook_event_linked(ev.received_at, linked)
    return out


def retag_order(session: Session, engine: RetentionEngine, order_id: str) -> None:
    """Recompute and write basis + retain_until for everything linked to one order.

    Call it after a payment is paid, an invoice is issued or a refund completes. Untagged rows
    (clock not started) are written as NULL. Flushes; the caller commits.
    """
    order = session.get(Order, order_id)
    if order is None:
        raise LookupError(f"no order {order_id!r}")
    linked = linked_records(session, order)
    computed = compute_order(session, engine, order_id, linked)
    payments, refunds, invoices, events = linked
    _write(order, computed.order)
    for rows, tags in (
        (payments, computed.payments),
        (refunds, computed.refunds),
        (invoices, computed.invoices),
        (events, computed.events),
    ):
        for row in rows:
            tag = tags.get(row.id)
            _write(row, tag)
            if order.restricted_at and tag is not None and row.restricted_at is None:
                # A record tagged after the erasure request is restricted like its order.
                row.restricted_at = order.restricted_at
                row.restriction_reason = restriction_reason(engine, tag.code)
    if order.restricted_at:
        _extend_stub(session, order.customer_ref, computed.dated())
    session.flush()


def _write(row: Order | Payment | Refund | Invoice | WebhookEvent, tag: Retention | None) -> None:
    row.retention_basis = tag.code if tag else None
    row.retain_until = tag.until if tag else None


def _extend_stub(session: Session, customer_ref: str, linked: list[Retention]) -> None:
    """The stub lives until its last linked retained record expires (retention-law.md §5.6)."""
    stub = session.get(CustomerStub, customer_ref)
    if stub is None or not linked:
        return
    until = max(r.until for r in linked)
    if stub.retain_until is None or until > stub.retain_until:
        stub.retain_until = until
        stub.retention_basis = STUB_CODE


def _tax_point(invoice: Invoice) -> date:
    assert invoice.issue_date is not None
    return max(invoice.issue_date, invoice.sale_date or invoice.issue_date)


def _refundday_of(refund: Refund) -> date:
    return day_of(refund.completed_at or refund.updated_at)


def linked_records(session: Session, order: Order) -> Linked:
    """The order's payments, refunds, invoices and webhook events (by id)."""
    payments = list(
        session.scalars(sa.select(Payment).where(Payment.order_id == order.id).order_by(Payment.id))
    )
    refunds = list(
        session.scalars(sa.select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))
    )
    invoices = list(
        session.scalars(sa.select(Invoice).where(Invoice.order_id == order.id).order_by(Invoice.id))
    )
    pids = [p.provider_payment_id for p in payments]
    # Events usually carry the order id; one that arrived before the order was matched
    # carries only the provider's payment id.
    match = WebhookEvent.order_id == order.id
    if pids:
        match = sa.or_(
            match,
            sa.and_(WebhookEvent.order_id.is_(None), WebhookEvent.provider_payment_id.in_(pids)),
        )
    events = list(session.scalars(sa.select(WebhookEvent).where(match).order_by(WebhookEvent.id)))
    return payments, refunds, invoices, events
