"""How an invoice job stops short of "issued": come back later, or park it for a human.

The helpers here only change the invoice row and raise; the job (invoicing/pipeline.py) commits
what they set together with the outbox item's outcome, in one transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NoReturn

from prometheus_client import Counter

from models import Invoice, InvoiceState

log = logging.getLogger("kwit.invoicing")

INVOICE_OUTCOMES = Counter(
    "kwit_invoice_outcomes_total", "Invoice job outcomes", ["kind", "outcome"]
)


class Park(Exception):
    """Stop: the invoice needs a human (failed or unknown). The outbox item is parked."""


class Later(Exception):
    """Come back later (transient trouble, or waiting for something); keep the state."""


def fail(invoice: Invoice, message: str, now: datetime) -> NoReturn:
    """The data cannot become an invoice (Kwit or iFirma refused it): `failed`, then park."""
    invoice.state = InvoiceState.FAILED
    invoice.last_error = message[:2000]
    invoice.updated_at = now
    log.warning("invoice failed", extra={"invoice_id": invoice.id, "error": message[:200]})
    raise Park(message)


def give_up(invoice: Invoice, message: str, *, cause: BaseException | None = None) -> NoReturn:
    """Nobody can tell whether iFirma holds the invoice: `unknown`, then park, never repost."""
    invoice.state = InvoiceState.UNKNOWN
    invoice.last_error = message
    raise Park(message) from cause


def retry_later(
    invoice: Invoice,
    message: str,
    *,
    cause: BaseException,
    not_sent: bool = False,
) -> NoReturn:
    """Record why and come back later. `not_sent`: iFirma never processed the request, so the
    invoice goes back to `pending` and the next run posts without reconciling first."""
    if not_sent:
        invoice.state = InvoiceState.PENDING
    invoice.last_error = message
    raise Later(message) from cause
