"""The invoice job: exactly one iFirma invoice per paid order (and one correction per refund).

iFirma has no idempotency key, so the database and iFirma's own list are the guard:

    pending ──build payload once, store it encrypted, commit──▶ calling ──POST──▶ issued
    calling (found again: crash, timeout, lost response) ──reconcile first──▶
        exactly one invoice carries our marker  → adopt it (issued)
        none                                    → POST again
        several                                 → unknown (a human decides; never a blind repost)
    validation error (Kod 201 …)                → failed, with iFirma's message

Only the worker holding the outbox lease touches an invoice, and the lease outlives any iFirma
call (Settings enforces it), so a second worker can only ever take over a crashed one.
After issue: read the full number, store the PDF, send B2B invoices to KSeF and read the KSeF
number, erase the buyer data, tag retention. Each of those steps is safe to repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.orm import Session

from compliance.retention import RetentionEngine
from invoicing import jobs, outbox
from invoicing.ifirma import (
    IFirmaAuthError,
    IFirmaClient,
    IFirmaError,
    IFirmaRateLimitError,
    IFirmaTransientError,
    IFirmaValidationError,
    ksef_status,
)
from invoicing.money import dumps, from_minor
from invoicing.payload import (
    WARSAW,
    PayloadError,
    build_correction,
    build_invoice,
    matches_marker,
)
from models import Invoice, InvoiceKind, InvoiceState, Order, OutboxItem, OutboxKind, Refund
from models.blobs import BlobStore
from models.vault import Vault

log = logging.getLogger("kwit.invoicing")

INVOICE_OUTCOMES = Counter(
    "kwit_invoice_outcomes_total", "Invoice job outcomes", ["kind", "outcome"]
)
KSEF_REJECTED = "ODRZUCONA_PRZEZ_KSEF"
KSEF_POLL = timedelta(seconds=10)


@dataclass(frozen=True)
class Services:
    """What the invoice job uses, from JobContext.services."""

    ifirma: IFirmaClient
    vault: Vault
    blobs: BlobStore
    retention: RetentionEngine
    ksef_enabled: bool = True

    @classmethod
    def of(cls, ctx: jobs.JobContext) -> Services:
        s = ctx.services
        if s.get("ifirma") is None:
            raise Later("iFirma is not configured (KWIT_IFIRMA_USER, KWIT_IFIRMA_INVOICE_KEY)")
        return cls(s["ifirma"], s["vault"], s["blobs"], s["retention"], s.get("ksef_enabled", True))


class Park(Exception):
    """Stop: the invoice needs a human (failed or unknown). The outbox item is parked."""


class Later(Exception):
    """Come back later (transient trouble, or waiting for something); keep the state."""


@jobs.handler(OutboxKind.ISSUE_INVOICE)
def issue_invoice(
    ctx: jobs.JobContext, session: Session, item: OutboxItem, *, now: datetime
) -> str:
    """Drive one invoice as far as it can go; always leaves the outbox item consistent."""
    try:
        svc = Services.of(ctx)
    except Later as unconfigured:
        outbox.reschedule(session, item, now=now, error=str(unconfigured))
        session.commit()
        return "unconfigured"
    invoice = session.get(Invoice, item.ref_id, with_for_update=True, populate_existing=True)
    if invoice is None:
        outbox.park(session, item, now=now, error="invoice row missing")
        session.commit()
        return "missing"
    kind = invoice.kind.value
    try:
        if invoice.state in (InvoiceState.FAILED, InvoiceState.UNKNOWN):
            raise Park(invoice.last_error or invoice.state.value)
        if invoice.state is not InvoiceState.ISSUED:
            _create_once(session, svc, invoice, now=now)
        waiting = _complete(session, svc, invoice, now=now)
    except Park as stop:
        outbox.park(session, item, now=now, error=str(stop))
        session.commit()
        INVOICE_OUTCOMES.labels(kind=kind, outcome=invoice.state.value).inc()
        return invoice.state.value
    except Later as wait:
        # Every path that raises Later has committed what it learned about the invoice.
        outbox.reschedule(session, item, now=now, error=str(wait))
        session.commit()
        INVOICE_OUTCOMES.labels(kind=kind, outcome="retry").inc()
        return "retry"
    if waiting:
        outbox.snooze(session, item, now=now, delay=KSEF_POLL, reason=waiting)
        session.commit()
        return "issued-waiting-ksef"
    outbox.finish(session, item, now=now)
    session.commit()
    INVOICE_OUTCOMES.labels(kind=kind, outcome="issued").inc()
    return "issued"


# ---------------------------------------------------------------- creating it once


def _create_once(session: Session, svc: Services, invoice: Invoice, *, now: datetime) -> None:
    """Make sure exactly one iFirma document exists for this invoice, and record its id."""
    order = session.get(Order, invoice.order_id)
    assert order is not None
    if invoice.state is InvoiceState.CALLING:
        found = _reconcile(session, svc, invoice, order)
        if found is not None:
            _record_issue(session, invoice, found, now=now)
            return
    if invoice.payload_encrypted is None:
        _build_payload(session, svc, invoice, order, now=now)
    payload = json.loads(svc.vault.decrypt_bytes(invoice.payload_encrypted), parse_float=Decimal)
    invoice.state = InvoiceState.CALLING
    invoice.attempts += 1
    invoice.updated_at = now
    session.commit()  # "calling" is durable before the request leaves: a crash now reconciles
    try:
        if invoice.kind is InvoiceKind.CORRECTION:
            original = _original(session, invoice)
            ifirma_id = svc.ifirma.create_correction(original.ifirma_id or "", payload)
        else:
            ifirma_id = svc.ifirma.create_invoice(payload)
    except IFirmaValidationError as exc:
        _fail(session, invoice, f"iFirma rejected the invoice (Kod {exc.kod}): {exc.message}", now)
    except (IFirmaRateLimitError, IFirmaAuthError) as exc:
        # Not processed by iFirma: back to pending, so the next run posts without reconciling.
        invoice.state = InvoiceState.PENDING
        invoice.last_error = f"{type(exc).__name__}: {exc}"
        session.commit()
        raise Later(invoice.last_error) from exc
    except IFirmaTransientError as exc:
        _after_transient(session, svc, invoice, order, exc, now=now)
        return
    except IFirmaError as exc:
        invoice.state = InvoiceState.UNKNOWN
        invoice.last_error = f"unexpected iFirma answer (Kod {exc.kod}): {exc.message}"
        session.commit()
        raise Park(invoice.last_error) from exc
    _record_issue(session, invoice, ifirma_id, now=now)


def _after_transient(
    session: Session,
    svc: Services,
    invoice: Invoice,
    order: Order,
    exc: IFirmaTransientError,
    *,
    now: datetime,
) -> None:
    """The call failed in transit. If it may have reached iFirma, look before trying again."""
    if not exc.outcome_unknown:
        invoice.state = InvoiceState.PENDING
        invoice.last_error = f"iFirma unreachable: {exc}"
        session.commit()
        raise Later(invoice.last_error) from exc
    try:
        found = _reconcile(session, svc, invoice, order)
    except (IFirmaTransientError, IFirmaRateLimitError) as again:
        invoice.last_error = f"outcome unknown, reconciliation postponed: {again}"
        session.commit()
        raise Later(invoice.last_error) from exc
    if found is None:
        invoice.last_error = f"outcome unknown and not found in iFirma; will post again: {exc}"
        session.commit()
        raise Later(invoice.last_error) from exc
    _record_issue(session, invoice, found, now=now)


def _reconcile(session: Session, svc: Services, invoice: Invoice, order: Order) -> str | None:
    """Find the iFirma invoice an earlier call may have created; None when there is none.

    Lists by issue date, amount (and NIP for B2B), then GETs each candidate and matches the
    Kwit marker in Uwagi, because the list does not carry Uwagi. Candidates Kwit has already
    attributed to another invoice are skipped: a subscription business issues many invoices a
    day for the same amount, and only the unclaimed ones can be this order's.
    """
    if invoice.kind is InvoiceKind.CORRECTION:
        # The list endpoint does not return corrections, so there is nothing safe to look at.
        invoice.state = InvoiceState.UNKNOWN
        invoice.last_error = "a correction call ended without an answer; check iFirma by hand"
        INVOICE_OUTCOMES.labels(kind="correction", outcome="ambiguous").inc()
        raise Park(invoice.last_error)
    if invoice.issue_date is None:
        return None  # never built, so never posted
    gross = from_minor(invoice.gross_minor)
    candidates = svc.ifirma.iter_invoices(
        date_from=invoice.issue_date,
        date_to=invoice.issue_date,
        nip=_payload_nip(svc, invoice),
        amount_from=gross,
        amount_to=gross,
    )
    ids = {str(c.get("FakturaId")) for c in candidates}
    claimed = set(
        session.scalars(
            sa.select(Invoice.ifirma_id).where(Invoice.ifirma_id.in_(ids), Invoice.id != invoice.id)
        )
    )
    matches = sorted(
        fid for fid in ids - claimed if matches_marker(svc.ifirma.get_invoice(fid), order.id)
    )
    if len(matches) > 1:
        invoice.state = InvoiceState.UNKNOWN
        invoice.last_error = f"{len(matches)} iFirma invoices carry this order's marker: {matches}"
        INVOICE_OUTCOMES.labels(kind="sale", outcome="ambiguous").inc()
        log.error(
            "ambiguous reconciliation",
            extra={"invoice_id": invoice.id, "candidates": matches},
        )
        raise Park(invoice.last_error)
    return matches[0] if matches else None


def _build_payload(
    session: Session, svc: Services, invoice: Invoice, order: Order, *, now: datetime
) -> None:
    """Build the iFirma request once and keep it encrypted: it holds buyer data."""
    try:
        if invoice.kind is InvoiceKind.CORRECTION:
            built = _correction_payload(session, svc, invoice, order, now=now)
        else:
            if order.billing is None:
                _fail(session, invoice, "the order holds no buyer data to invoice", now)
            buyer = svc.vault.decrypt(order.billing)
            built = build_invoice(
                order_id=order.id,
                lines=order.items,
                gross_minor=invoice.gross_minor,
                currency=invoice.currency,
                paid_at=invoice.paid_at or now,
                buyer=buyer,
                payment_ref=invoice.provider_payment_id or invoice.id,
                provider=invoice.provider,
                issue_date=_warsaw_today(now),
            )
            invoice.sale_date = built.sale_date
    except PayloadError as exc:
        _fail(session, invoice, f"cannot build the invoice: {exc}", now)
    body = dumps(built.payload)
    invoice.payload_encrypted = svc.vault.encrypt_bytes(body)
    invoice.payload_sha256 = hashlib.sha256(body).hexdigest()
    invoice.issue_date = built.issue_date
    # A correction's amounts are the signed change it makes (negative for a refund), which is
    # what the accountant books; a sale invoice's are its totals.
    totals = built.difference if invoice.kind is InvoiceKind.CORRECTION else built.totals
    invoice.totals = {
        rate: {"net_minor": t.net_minor, "vat_minor": t.vat_minor, "gross_minor": t.gross_minor}
        for rate, t in totals.items()
    }
    if invoice.kind is InvoiceKind.CORRECTION:
        invoice.gross_minor = sum(t.gross_minor for t in totals.values())


def _correction_payload(
    session: Session, svc: Services, invoice: Invoice, order: Order, *, now: datetime
) -> Any:
    original = _original(session, invoice)
    # The original's positions come from iFirma itself: Kwit erased its copy at issue time.
    source = svc.ifirma.get_invoice(original.ifirma_id or "")
    refund = session.get(Refund, invoice.refund_id) if invoice.refund_id else None
    if refund is None:
        _fail(session, invoice, "the correction has no refund to correct for", now)
    built = build_correction(
        original_payload=source,
        order_id=order.id,
        refund_ref=refund.provider_refund_id or refund.id,
        refund_minor=refund.amount_minor,
        refunded_at=invoice.paid_at or now,
        issue_date=max(_warsaw_today(now), original.issue_date or _warsaw_today(now)),
    )
    invoice.corrects_invoice_id = original.id
    invoice.sale_date = original.sale_date
    return built


def _payload_nip(svc: Services, invoice: Invoice) -> str | None:
    """The buyer's NIP, read from the encrypted payload (it is not stored in plain before issue)."""
    if invoice.payload_encrypted is None:
        return None
    payload = json.loads(svc.vault.decrypt_bytes(invoice.payload_encrypted))
    return (payload.get("Kontrahent") or {}).get("NIP")


def _original(session: Session, invoice: Invoice) -> Invoice:
    original = session.scalar(
        sa.select(Invoice).where(
            Invoice.order_id == invoice.order_id, Invoice.kind == InvoiceKind.SALE
        )
    )
    if original is None or original.state is not InvoiceState.ISSUED or not original.ifirma_id:
        raise Later("waiting for the original invoice to be issued")
    return original


def _fail(session: Session, invoice: Invoice, message: str, now: datetime) -> None:
    invoice.state = InvoiceState.FAILED
    invoice.last_error = message[:2000]
    invoice.updated_at = now
    session.commit()
    log.warning("invoice failed", extra={"invoice_id": invoice.id, "error": message[:200]})
    raise Park(message)


def _record_issue(session: Session, invoice: Invoice, ifirma_id: str, *, now: datetime) -> None:
    invoice.ifirma_id = ifirma_id
    invoice.state = InvoiceState.ISSUED
    invoice.issued_at = now
    invoice.last_error = None
    invoice.updated_at = now
    session.commit()
    log.info("invoice issued", extra={"invoice_id": invoice.id, "ifirma_id": ifirma_id})


# ---------------------------------------------------------------- after issue


def _complete(session: Session, svc: Services, invoice: Invoice, *, now: datetime) -> str | None:
    """Number, KSeF, PDF, buyer-data erasure, retention. Returns why it must wait, if it must.

    A B2B invoice goes to KSeF first, so one GET then reads both the full number and the KSeF
    number; retention is computed once, at the end, and everything learned is committed once,
    by the caller, in the same transaction that finishes or snoozes the outbox item.
    B2C invoices are outside the KSeF duty (VAT Act art. 106ga ust. 2 pkt 4) and stay local.
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
        session.commit()
        raise Later(f"issued; follow-up postponed: {exc}") from exc
    _erase_buyer_data(session, invoice, nip)
    _tag_retention(session, svc, invoice)
    # Not committed here: the caller commits it together with the outbox item's update.
    if not ksef or invoice.ksef_number:
        return None
    if invoice.ksef_status == KSEF_REJECTED:
        log.error("KSeF rejected an invoice", extra={"invoice_id": invoice.id})
        return None  # visible through the API; a human corrects it in iFirma
    return "waiting for KSeF to accept the invoice"


def _buyer_nip(session: Session, svc: Services, invoice: Invoice) -> str | None:
    """The NIP printed on the invoice: from the encrypted payload, or the corrected original."""
    if invoice.buyer_nip or invoice.kind is InvoiceKind.SALE:
        return invoice.buyer_nip or _payload_nip(svc, invoice)
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


def _tag_retention(session: Session, svc: Services, invoice: Invoice) -> None:
    from compliance.tags import retag_order

    retag_order(session, svc.retention, invoice.order_id)


def _warsaw_today(now: datetime) -> date:
    return now.astimezone(WARSAW).date()
