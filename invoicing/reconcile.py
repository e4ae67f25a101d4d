"""Reconciliation: find the iFirma invoice an earlier call may have created, before posting again.

iFirma has no idempotency key, so a call that ended without an answer (crash, timeout, lost
response) is settled by looking at iFirma's own list: exactly one unclaimed invoice carrying
this order's marker is adopted, none means post again, several mean a human decides.
Like every step of the job, nothing here commits.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session

from invoicing.context import Services
from invoicing.ifirma import IFirmaRateLimitError, IFirmaTransientError
from invoicing.money import from_minor
from invoicing.outcomes import INVOICE_OUTCOMES, give_up, retry_later
from invoicing.payload import matches_marker
from models import Invoice, InvoiceKind, Order

log = logging.getLogger("kwit.invoicing")


def find_existing(session: Session, svc: Services, invoice: Invoice, order: Order) -> str | None:
    """The iFirma id of the invoice an earlier call created; None when there is none.

    Lists by issue date, amount (and NIP for B2B), then GETs each candidate and matches the
    Kwit marker in Uwagi, because the list does not carry Uwagi. Candidates Kwit has already
    attributed to another invoice are skipped: a subscription business issues many invoices a
    day for the same amount, and only the unclaimed ones can be this order's.
    Raises Park (the invoice `unknown`) when it cannot tell.
    """
    if invoice.kind is InvoiceKind.CORRECTION:
        # The list endpoint does not return corrections, so there is nothing safe to look at.
        INVOICE_OUTCOMES.labels(kind="correction", outcome="ambiguous").inc()
        give_up(invoice, "a correction call ended without an answer; check iFirma by hand")
    if invoice.issue_date is None:
        return None  # never built, so never posted
    gross = from_minor(invoice.gross_minor)
    candidates = svc.ifirma.iter_invoices(
        date_from=invoice.issue_date,
        date_to=invoice.issue_date,
        nip=svc.payload_nip(invoice),
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
        INVOICE_OUTCOMES.labels(kind="sale", outcome="ambiguous").inc()
        log.error(
            "ambiguous reconciliation", extra={"invoice_id": invoice.id, "candidates": matches}
        )
        give_up(invoice, f"{len(matches)} iFirma invoices carry this order's marker: {matches}")
    return matches[0] if matches else None


def after_transient(
    session: Session, svc: Services, invoice: Invoice, order: Order, exc: IFirmaTransientError
) -> str:
    """The POST failed in transit: the iFirma id when it did create the invoice, else Later.

    A call that never left (connection refused) goes back to `pending`; one that may have
    reached iFirma stays `calling` and is reconciled now, or on the next run when iFirma's
    list cannot be read either.
    """
    if not exc.outcome_unknown:
        retry_later(invoice, f"iFirma unreachable: {exc}", cause=exc, not_sent=True)
    try:
        found = find_existing(session, svc, invoice, order)
    except (IFirmaTransientError, IFirmaRateLimitError) as again:
        retry_later(invoice, f"outcome unknown, reconciliation postponed: {again}", cause=exc)
    if found is None:
        retry_later(
            invoice, f"outcome unknown and not found in iFirma; will post again: {exc}", cause=exc
        )
    return found
