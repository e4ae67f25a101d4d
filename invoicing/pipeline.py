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

The steps live beside this module: invoicing/issue.py (build and post), invoicing/reconcile.py
(look before posting again) and invoicing/after_issue.py. They change the rows and raise
Later or Park (invoicing/outcomes.py); every commit is in `issue_invoice` below.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from invoicing import outbox
from invoicing.after_issue import KSEF_POLL, complete
from invoicing.context import JobContext, Services
from invoicing.issue import post, prepare, record_issue
from invoicing.outcomes import INVOICE_OUTCOMES, Later, Park
from models import Invoice, InvoiceState, OutboxItem

__all__ = ["Later", "Park", "Services", "issue_invoice"]


def issue_invoice(ctx: JobContext, session: Session, item: OutboxItem, *, now: datetime) -> str:
    """Drive one invoice as far as it can go; always leaves the outbox item consistent.

    Three commits, all here: "calling" before the POST, iFirma's id right after it, and the
    job's outcome (issued, snoozed, rescheduled or parked) with everything else learned.
    """
    invoice: Invoice | None = None
    waiting: str | None = None
    try:
        svc = Services.of(ctx)  # Later when iFirma is not configured
        invoice = session.get(Invoice, item.ref_id, with_for_update=True, populate_existing=True)
        if invoice is None:
            raise Park("invoice row missing")
        if invoice.state in (InvoiceState.FAILED, InvoiceState.UNKNOWN):
            raise Park(invoice.last_error or invoice.state.value)
        if invoice.state is not InvoiceState.ISSUED:
            call = prepare(session, svc, invoice, now=now)  # None: reconciled, iFirma has it
            if call is not None:
                # "calling" is durable before the request leaves: a crash or a lost answer from
                # here on is reconciled by the next run instead of posted again.
                session.commit()
                record_issue(invoice, post(session, svc, invoice, call, now=now), now=now)
                # iFirma's id is durable the moment Kwit knows it, before the follow-up calls:
                # a correction cannot be reconciled (iFirma's list leaves corrections out), so
                # losing its id would leave it `unknown` for a human.
                session.commit()
        waiting = complete(session, svc, invoice)
    except Park as stop:
        outbox.park(session, item, now=now, error=str(stop))
        outcome = invoice.state.value if invoice else "missing"
    except Later as wait:
        outbox.reschedule(session, item, now=now, error=str(wait))
        outcome = "retry" if invoice else "unconfigured"
    else:
        if waiting:
            outbox.snooze(session, item, now=now, delay=KSEF_POLL, reason=waiting)
            outcome = "issued-waiting-ksef"
        else:
            outbox.finish(session, item, now=now)
            outcome = "issued"
    # The job's outcome: the outbox item's new state and what this run learned about the
    # invoice (state, last_error, number, KSeF, PDF, erasure, retention) in one transaction.
    session.commit()
    if invoice is not None and outcome != "issued-waiting-ksef":
        INVOICE_OUTCOMES.labels(kind=invoice.kind.value, outcome=outcome).inc()
    return outcome
