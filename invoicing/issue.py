"""Creating the iFirma document once: build the payload, post it, read what iFirma answered.

The job (invoicing/pipeline.py) runs these steps and owns the commits around the POST:
`prepare` leaves the invoice `calling`, which the job commits before `post` sends anything.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from invoicing.context import Services
from invoicing.correction import BuiltCorrection, build_correction
from invoicing.ifirma import (
    IFirmaAuthError,
    IFirmaError,
    IFirmaRateLimitError,
    IFirmaTransientError,
    IFirmaValidationError,
)
from invoicing.money import dumps
from invoicing.outcomes import Later, fail, give_up, retry_later
from invoicing.payload import WARSAW, BuiltInvoice, PayloadError, build_invoice
from invoicing.reconcile import after_transient, find_existing
from models import Invoice, InvoiceKind, InvoiceState, Order, Refund

log = logging.getLogger("kwit.invoicing")


@dataclass(frozen=True)
class Call:
    """The request `post` sends: the stored payload and, for a correction, the original's id."""

    order: Order
    payload: dict[str, Any]
    corrects: str | None = None


def prepare(session: Session, svc: Services, invoice: Invoice, *, now: datetime) -> Call | None:
    """Make the invoice ready to post and mark it `calling`; None when iFirma already has it.

    An invoice found `calling` (an earlier call ended without an answer) is reconciled first
    and adopted when iFirma holds it. The payload is built once and kept encrypted.
    """
    order = session.get(Order, invoice.order_id)
    assert order is not None
    if invoice.state is InvoiceState.CALLING:
        found = find_existing(session, svc, invoice, order)
        if found is not None:
            record_issue(invoice, found, now=now)
            return None
    if invoice.payload_encrypted is None:
        _build_payload(session, svc, invoice, order, now=now)
    payload = svc.stored_payload(invoice)
    assert payload is not None
    corrects = None
    if invoice.kind is InvoiceKind.CORRECTION:
        corrects = _original(session, invoice).ifirma_id or ""
    invoice.state = InvoiceState.CALLING
    invoice.attempts += 1
    invoice.updated_at = now
    return Call(order, payload, corrects)


def post(session: Session, svc: Services, invoice: Invoice, call: Call, *, now: datetime) -> str:
    """POST the invoice; its iFirma id, or raise Later / Park with the invoice updated."""
    try:
        if call.corrects is not None:
            return svc.ifirma.create_correction(call.corrects, call.payload)
        return svc.ifirma.create_invoice(call.payload)
    except IFirmaValidationError as exc:
        fail(invoice, f"iFirma rejected the invoice (Kod {exc.kod}): {exc.message}", now)
    except (IFirmaRateLimitError, IFirmaAuthError) as exc:
        # Not processed by iFirma: back to pending, so the next run posts without reconciling.
        retry_later(invoice, f"{type(exc).__name__}: {exc}", cause=exc, not_sent=True)
    except IFirmaTransientError as exc:
        return after_transient(session, svc, invoice, call.order, exc)
    except IFirmaError as exc:
        give_up(invoice, f"unexpected iFirma answer (Kod {exc.kod}): {exc.message}", cause=exc)


def record_issue(invoice: Invoice, ifirma_id: str, *, now: datetime) -> None:
    """iFirma holds the invoice under `ifirma_id`: it is issued."""
    invoice.ifirma_id = ifirma_id
    invoice.state = InvoiceState.ISSUED
    invoice.issued_at = now
    invoice.last_error = None
    invoice.updated_at = now
    log.info("invoice issued", extra={"invoice_id": invoice.id, "ifirma_id": ifirma_id})


def _build_payload(
    session: Session, svc: Services, invoice: Invoice, order: Order, *, now: datetime
) -> None:
    """Build the iFirma request once and keep it encrypted: it holds buyer data."""
    built: BuiltInvoice | BuiltCorrection
    try:
        if invoice.kind is InvoiceKind.CORRECTION:
            built = _correction_payload(session, svc, invoice, order, now=now)
        else:
            built = _sale_payload(svc, invoice, order, now=now)
    except PayloadError as exc:
        fail(invoice, f"cannot build the invoice: {exc}", now)
    body = dumps(built.payload)
    invoice.payload_encrypted = svc.vault.encrypt_bytes(body)
    invoice.payload_sha256 = hashlib.sha256(body).hexdigest()
    invoice.issue_date = built.issue_date
    # A correction's amounts are the signed change it makes (negative for a refund), which is
    # what the accountant books; a sale invoice's are its totals.
    totals = built.difference if isinstance(built, BuiltCorrection) else built.totals
    invoice.totals = {
        rate: {"net_minor": t.net_minor, "vat_minor": t.vat_minor, "gross_minor": t.gross_minor}
        for rate, t in totals.items()
    }
    if invoice.kind is InvoiceKind.CORRECTION:
        invoice.gross_minor = sum(t.gross_minor for t in totals.values())


def _sale_payload(svc: Services, invoice: Invoice, order: Order, *, now: datetime) -> BuiltInvoice:
    if order.billing is None:
        fail(invoice, "the order holds no buyer data to invoice", now)
    built = build_invoice(
        order_id=order.id,
        lines=order.items,
        gross_minor=invoice.gross_minor,
        currency=invoice.currency,
        paid_at=invoice.paid_at or now,
        buyer=svc.vault.decrypt(order.billing),
        payment_ref=invoice.provider_payment_id or invoice.id,
        provider=invoice.provider,
        issue_date=warsaw_today(now),
    )
    invoice.sale_date = built.sale_date
    return built


def _correction_payload(
    session: Session, svc: Services, invoice: Invoice, order: Order, *, now: datetime
) -> BuiltCorrection:
    original = _original(session, invoice)
    # The original's positions come from iFirma itself: Kwit erased its copy at issue time.
    source = svc.ifirma.get_invoice(original.ifirma_id or "")
    refund = session.get(Refund, invoice.refund_id) if invoice.refund_id else None
    if refund is None:
        fail(invoice, "the correction has no refund to correct for", now)
    built = build_correction(
        original_payload=source,
        order_id=order.id,
        refund_ref=refund.provider_refund_id or refund.id,
        refund_minor=refund.amount_minor,
        refunded_at=invoice.paid_at or now,
        issue_date=max(warsaw_today(now), original.issue_date or warsaw_today(now)),
    )
    invoice.corrects_invoice_id = original.id
    invoice.sale_date = original.sale_date
    return built


def _original(session: Session, invoice: Invoice) -> Invoice:
    """The sale invoice a correction corrects; Later until it is issued."""
    original = session.scalar(
        sa.select(Invoice).where(
            Invoice.order_id == invoice.order_id, Invoice.kind == InvoiceKind.SALE
        )
    )
    if original is None or original.state is not InvoiceState.ISSUED or not original.ifirma_id:
        raise Later("waiting for the original invoice to be issued")
    return original


def warsaw_today(now: datetime) -> date:
    """The calendar day in Poland: iFirma's dates are Warsaw dates."""
    return now.astimezone(WARSAW).date()
