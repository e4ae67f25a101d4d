"""Model factories for tests: real rows through the ORM, with sensible defaults."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from models import (
    EventOutcome,
    Invoice,
    InvoiceKind,
    InvoiceState,
    Order,
    OrderStatus,
    OutboxItem,
    Payment,
    Refund,
    RefundStatus,
    WebhookEvent,
    new_id,
)
from models.blobs import BlobStore
from models.vault import Vault

BUYER = {
    "name": "Przykładowa Firma sp. z o.o.",
    "email": "faktury@przyklad.example.pl",
    "nip": "5260250995",
    "tax_id": None,
    "line1": "ul. Prosta 1/2",
    "line2": None,
    "postal_code": "00-838",
    "city": "Warszawa",
    "country": "PL",
}


def make_order(
    session: Session,
    *,
    vault: Vault | None = None,
    buyer: dict[str, Any] | None = None,
    gross_minor: int = 12300,
    customer_ref: str = "cust-1",
    provider: str = "paynow",
    status: OrderStatus = OrderStatus.PENDING,
    created_at: datetime | None = None,
    **fields: Any,
) -> Order:
    """An order with one 23 % line; billing encrypted when a vault is given."""
    order = Order(
        id=fields.pop("id", new_id()),
        external_ref=fields.pop("external_ref", f"ext-{new_id()}"),
        customer_ref=customer_ref,
        provider=provider,
        currency="PLN",
        gross_minor=gross_minor,
        items=[
            {"name": "Pro plan", "quantity": 1, "unit_gross_minor": gross_minor, "vat_rate": "23"}
        ],
        buyer_type="business" if (buyer or BUYER).get("nip") else "consumer",
        billing=vault.encrypt(buyer or BUYER) if vault else None,
        status=status,
        **fields,
    )
    if created_at:
        order.created_at = order.updated_at = created_at
    session.add(order)
    session.flush()
    return order


def make_payment(
    session: Session,
    order: Order,
    *,
    status: str = "CONFIRMED",
    paid_at: datetime | None = None,
    **fields: Any,
) -> Payment:
    payment = Payment(
        order_id=order.id,
        provider=order.provider,
        provider_payment_id=fields.pop("provider_payment_id", f"P{new_id()[-15:]}"),
        status=status,
        amount_minor=order.gross_minor,
        currency=order.currency,
        paid_at=paid_at,
        **fields,
    )
    session.add(payment)
    session.flush()
    return payment


def make_event(
    session: Session,
    order: Order,
    *,
    pid: str | None,
    outcome: EventOutcome = EventOutcome.APPLIED,
    received: datetime | None = None,
) -> WebhookEvent:
    """A recorded webhook event for `order` (payment id `pid`), received 2026-06-10 by default."""
    event = WebhookEvent(
        provider=order.provider,
        event_key=f"evt_{new_id()}",
        event_type="payment.status",
        provider_payment_id=pid,
        order_id=order.id,
        body_sha256="0" * 64,
        outcome=outcome,
        received_at=received or datetime(2026, 6, 10, 10, tzinfo=UTC),
    )
    session.add(event)
    session.flush()
    return event


def make_issued_invoice(
    session: Session,
    *,
    blobs: BlobStore | None = None,
    issue_date: date = date(2026, 11, 23),
    number: str | None = None,
    gross_minor: int = 12300,
    customer_ref: str = "cust-1",
    nip: str | None = "5260250995",
    pdf: bytes | None = None,
    kind: InvoiceKind = InvoiceKind.SALE,
    corrects: Invoice | None = None,
    order: Order | None = None,
    **fields: Any,
) -> Invoice:
    """An issued invoice (with order and payment), its PDF in `blobs` when given."""
    paid_at = datetime(issue_date.year, issue_date.month, issue_date.day, 10, 0, tzinfo=UTC)
    if order is None:
        order = make_order(
            session, gross_minor=gross_minor, customer_ref=customer_ref, status=OrderStatus.PAID
        )
        payment = make_payment(session, order, paid_at=paid_at)
    else:
        payment = session.query(Payment).filter_by(order_id=order.id).first()
    sequence = new_id()
    net = round(gross_minor / 1.23)
    invoice = Invoice(
        order_id=order.id,
        kind=kind,
        dedupe_key=f"{kind.value}:{order.id if kind is InvoiceKind.SALE else sequence}",
        corrects_invoice_id=corrects.id if corrects else None,
        state=InvoiceState.ISSUED,
        provider=order.provider,
        provider_payment_id=payment.provider_payment_id if payment else None,
        gross_minor=gross_minor,
        currency="PLN",
        paid_at=paid_at,
        ifirma_id=str(1000000 + int(sequence[-6:], 36) % 899999),
        number=number or f"{sequence[-4:]}/{issue_date.month}/{issue_date.year}",
        issue_date=issue_date,
        sale_date=issue_date,
        totals={
            "23": {"net_minor": net, "vat_minor": gross_minor - net, "gross_minor": gross_minor}
        },
        buyer_nip=nip,
        issued_at=paid_at,
        **fields,
    )
    if blobs is not None:
        body = (
            pdf if pdf is not None else b"%PDF-1.4\n% Kwit test invoice " + invoice.number.encode()
        )
        invoice.pdf_key, invoice.pdf_sha256 = blobs.put(body)
    session.add(invoice)
    session.flush()
    return invoice


def make_refund(session: Session, payment: Payment, *, amount_minor: int, **fields: Any) -> Refund:
    refund = Refund(
        order_id=payment.order_id,
        payment_id=payment.id,
        provider=payment.provider,
        provider_refund_id=fields.pop("provider_refund_id", f"R{new_id()[-15:]}"),
        amount_minor=amount_minor,
        currency=payment.currency,
        status=fields.pop("status", RefundStatus.SUCCESSFUL),
        **fields,
    )
    session.add(refund)
    session.flush()
    return refund


def make_outbox(session: Session, invoice: Invoice, **fields: Any) -> OutboxItem:
    item = OutboxItem(kind="issue_invoice", ref_id=invoice.id, **fields)
    session.add(item)
    session.flush()
    return item
