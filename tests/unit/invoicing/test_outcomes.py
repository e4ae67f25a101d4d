"""The invoice job's stop helpers: they set what was learned on the invoice, then raise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from invoicing.outcomes import Later, Park, fail, give_up, retry_later
from models import Invoice, InvoiceState

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def calling() -> Invoice:
    return Invoice(id="inv-1", state=InvoiceState.CALLING, last_error=None)


def test_fail_marks_failed_and_parks() -> None:
    invoice = calling()
    with pytest.raises(Park, match="Kod 201"):
        fail(invoice, "iFirma rejected the invoice (Kod 201): " + "x" * 3000, NOW)
    assert invoice.state is InvoiceState.FAILED
    assert len(invoice.last_error) == 2000
    assert invoice.updated_at == NOW


def test_give_up_marks_unknown_and_keeps_the_cause() -> None:
    invoice = calling()
    cause = RuntimeError("lost")
    with pytest.raises(Park) as stopped:
        give_up(invoice, "2 iFirma invoices carry this order's marker", cause=cause)
    assert stopped.value.__cause__ is cause
    assert invoice.state is InvoiceState.UNKNOWN
    assert invoice.last_error == "2 iFirma invoices carry this order's marker"


def test_retry_later_keeps_calling_unless_nothing_was_sent() -> None:
    maybe_sent, never_sent = calling(), calling()
    with pytest.raises(Later):
        retry_later(maybe_sent, "outcome unknown", cause=TimeoutError())
    with pytest.raises(Later):
        retry_later(never_sent, "iFirma unreachable", cause=ConnectionError(), not_sent=True)
    assert maybe_sent.state is InvoiceState.CALLING  # the next run reconciles first
    assert never_sent.state is InvoiceState.PENDING  # the next run posts at once
    assert never_sent.last_error == "iFirma unreachable"
