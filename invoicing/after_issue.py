"""After issue: the full number, KSeF, the PDF, buyer-data erasure and retention tags.

Each step is safe to repeat, and nothing here commits: the job commits what was learned in the
same transaction that finishes, snoozes or reschedules its outbox item.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from compliance.tags import retag_order
from invoicing.context import Services
from invoicing.ifirma import (
    IFirmaAuthError,
    IFirmaRateLimitError,
    IFirmaTransientError,
    ksef_status,
)
from invoicing.outcomes import Later
from models import Invoice, InvoiceKind, Order

log = logging.getLogger("kwit.invoicing")

KSEF_REJECTED = "ODRZUCONA_PRZEZ_KSEF"
KSEF_POLL = timedelta(seconds=10)


def complete(session: Session, svc: Services, invoice: Invoice) -> str | None:
    """Number, KSeF, PDF, buyer-data erasure, retention. Returns why it must wait, if it must.

    A B2B invoice goes to KSeF first, so one GET then reads both the full number and the KSeF
    number; retention is computed once, at the end. B2C invoices are outside the KSeF duty
    (VAT Act art. 106ga ust. 2 pkt 4; docs/protocols/ksef.md, on who must use KSeF) and stay local.
    Raises Later, with what it learned kept on the invoice, when iFirma cannot answer now.
    """
    ifirma_id = invoice.ifirma_id or ""
    nip = _buyer_nip(session, svc, invoice)
    ksef = svc.ksef_enabled and invoice.ksef_number is None and bool(nip)
    try:
        if ksef and invoice.ksef_status is None:
            # Sending twice is harmless: iFirma answers "already sent", which counts as success.
            svc.ifirma.send_to_ksef(ifirma_id, kind=_ksef_kind(invoice))
        if invoice.number is None or ksef:
            document = svc.ifirma.get_invoice(ifirma_id)
            invoice.number = invoice.number or document.get("PelnyNumer")
            if ksef:
                number, status = ksef_status(document)
                invoice.ksef_number, invoice.ksef_status = number or None, status or "sent"
        if invoice.pdf_key is None:
            invoice.pdf_key, invoice.pdf_sha256 = svc.blobs.put(svc.ifirma.get_pdf(ifirma_id))
    except (IFirmaTransientError, IFirmaRateLimitError, IFirmaAuthError) as exc:
        raise Later(f"issued; follow-up postponed: {exc}") from exc
    _erase_buyer_data(session, invoice, nip)
    retag_order(session, svc.retention, invoice.order_id)
    if not ksef or invoice.ksef_number:
        return None
    if invoice.ksef_status == KSEF_REJECTED:
        log.error("KSeF rejected an invoice", extra={"invoice_id": invoice.id})
        return None  # visible through the API; a human corrects it in iFirma
    return "waiting for KSeF to accept the invoice"


def _buyer_nip(session: Session, svc: Services, invoice: Invoice) -> str | None:
    """The NIP printed on the invoice: from the encrypted payload, or the corrected original."""
    if invoice.buyer_nip or invoice.kind is InvoiceKind.SALE:
        return invoice.buyer_nip or svc.payload_nip(invoice)
    original = (
        session.get(Invoice, invoice.corrects_invoice_id) if invoice.corrects_invoice_id else None
    )
    return original.buyer_nip if original else None


def _ksef_kind(invoice: Invoice) -> str:
    return "fakturakraj/korekta" if invoice.kind is InvoiceKind.CORRECTION else "fakturakraj"


def _erase_buyer_data(session: Session, invoice: Invoice, nip: str | None) -> None:
    """Once the invoice exists, Kwit keeps no buyer data: iFirma holds the invoice itself.

    What stays is the invoice reference the accountant's archive lists: number, amounts and, for
    a VAT-registered buyer, the NIP printed on the invoice (kept under VAT Act art. 112 with the
    invoice). Name, address and e-mail are gone with the payload and the order's billing token.
    """
    invoice.buyer_nip = nip
    invoice.payload_encrypted = None
    if invoice.kind is InvoiceKind.SALE:
        # Through the session, not a bulk UPDATE: it goes out with the order's retention tags
        # in the same flush (the bulk UPDATE was a statement and a flush of its own).
        order = session.get(Order, invoice.order_id)
        assert order is not None
        order.billing = None
