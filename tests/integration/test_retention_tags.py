"""retag_order writes the worked-example dates (docs/retention-law.md §8) on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime

import pytest

from compliance.retention import RetentionEngine, load_policy
from compliance.tags import retag_order, tag_webhook_event
from models import (
    CustomerStub,
    EventOutcome,
    Invoice,
    InvoiceKind,
    InvoiceState,
    Order,
    OrderStatus,
    RefundStatus,
)
from tests.factories import (
    BUYER,
    make_event,
    make_issued_invoice,
    make_order,
    make_payment,
    make_refund,
)

CIT = "PL_OP_86+CIT_27"
CONSUMER = {**BUYER, "nip": None}


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, 0, tzinfo=UTC)


def invoice_order(session, invoice):
    return session.get(Order, invoice.order_id)


def pending_invoice(session, order):
    invoice = Invoice(
        order_id=order.id,
        dedupe_key=f"sale:{order.id}",
        state=InvoiceState.PENDING,
        provider=order.provider,
        gross_minor=order.gross_minor,
        currency=order.currency,
    )
    session.add(invoice)
    session.flush()
    return invoice


@pytest.fixture
def session(app):
    with app.extensions["kwit"].sessions() as s:
        yield s


@pytest.fixture
def pl() -> RetentionEngine:
    return RetentionEngine()


def test_issued_invoice_gets_example_2_date_and_everything_linked_is_tagged(session, pl) -> None:
    invoice = make_issued_invoice(session, issue_date=date(2026, 6, 10))
    order = invoice_order(session, invoice)
    payment = order.payments[0]
    applied = make_event(session, order, pid=payment.provider_payment_id)
    ignored = make_event(session, order, pid=None, outcome=EventOutcome.IGNORED)

    retag_order(session, pl, order.id)

    assert (invoice.retention_basis, invoice.retain_until) == (CIT, date(2032, 12, 31))
    # Business buyer: tax and books for 2026 win over the 3-year B2B civil rule.
    assert payment.retain_until == date(2032, 12, 31)
    assert payment.retention_basis == CIT
    assert order.retain_until == date(2031, 12, 31)  # Accounting Act art. 74 ust. 2 pkt 4
    assert order.retention_basis == "PL_UOR_74_2_4"
    # The applied event keeps its id with the payment; the ignored one lasts 90 days.
    assert (applied.retention_basis, applied.retain_until) == ("LINKED_PAYMENT", date(2032, 12, 31))
    assert (ignored.retention_basis, ignored.retain_until) == (
        "GDPR_5_1_E_WEBHOOK_90D",
        date(2026, 9, 8),
    )


def test_december_invoice_is_kept_a_year_longer(session, pl) -> None:
    invoice = make_issued_invoice(session, issue_date=date(2026, 12, 15))
    retag_order(session, pl, invoice.order_id)
    assert invoice.retain_until == date(2032, 12, 31)  # worked example 1


def test_correction_next_year_extends_original_and_refund(session, pl) -> None:
    """Worked example 3: invoice 2026-03-10, refund and correction 2027-02-05."""
    original = make_issued_invoice(session, issue_date=date(2026, 3, 10))
    order = invoice_order(session, original)
    retag_order(session, pl, order.id)
    assert original.retain_until == date(2032, 12, 31)

    payment = order.payments[0]
    refund = make_refund(session, payment, amount_minor=12300, completed_at=at(2027, 2, 5))
    correction = make_issued_invoice(
        session,
        issue_date=date(2027, 2, 5),
        kind=InvoiceKind.CORRECTION,
        corrects=original,
        order=order,
        refund_id=refund.id,
        gross_minor=12300,
    )
    retag_order(session, pl, order.id)

    assert (correction.retention_basis, correction.retain_until) == (CIT, date(2033, 12, 31))
    assert refund.retain_until == date(2033, 12, 31)
    assert original.retain_until == date(2033, 12, 31)
    assert original.retention_basis == "LINKED_CORRECTION"
    # Order anchor moved to the refund (2027): art. 74 ust. 2 pkt 4 → 2032.
    assert order.retain_until == date(2032, 12, 31)


def test_consumer_payment_follows_the_last_settlement(session, pl) -> None:
    """Worked example 4: payment 2026-05-03, the contract ran until 2028-08-20."""
    order = make_order(session, buyer=CONSUMER, status=OrderStatus.PAID)
    first = make_payment(session, order, paid_at=at(2026, 5, 3))
    make_payment(session, order, paid_at=at(2028, 8, 20))
    retag_order(session, pl, order.id)
    assert (first.retention_basis, first.retain_until) == ("PL_KC_118", date(2034, 12, 31))
    assert order.retain_until == date(2034, 12, 31)
    assert order.retention_basis == "PL_KC_118"


def test_rows_whose_clock_has_not_started_stay_untagged(session, pl) -> None:
    order = make_order(session)
    unpaid = make_payment(session, order, status="PENDING", paid_at=None)
    event = make_event(session, order, pid=unpaid.provider_payment_id)
    retag_order(session, pl, order.id)
    assert (order.retention_basis, order.retain_until) == (None, None)
    assert (unpaid.retention_basis, unpaid.retain_until) == (None, None)
    # The event applied a transition of a payment that is not paid: only the 90-day rule.
    assert event.retention_basis == "GDPR_5_1_E_WEBHOOK_90D"

    paid = make_order(session, status=OrderStatus.PAID)
    make_payment(session, paid, paid_at=at(2026, 6, 10))
    pending = pending_invoice(session, paid)
    pending_refund = make_refund(
        session, paid.payments[0], amount_minor=100, status=RefundStatus.PENDING
    )
    retag_order(session, pl, paid.id)
    assert paid.retain_until is not None
    assert (pending.retention_basis, pending.retain_until) == (None, None)
    assert pending_refund.retain_until is None


def test_tag_webhook_event_helper(pl) -> None:
    assert tag_webhook_event(pl, at(2026, 11, 23)) == ("GDPR_5_1_E_WEBHOOK_90D", date(2027, 2, 21))
    payment = pl.payment(paid_at=date(2026, 5, 3), consumer=True, contract_anchor=date(2028, 8, 20))
    assert tag_webhook_event(pl, at(2026, 11, 23), payment) == (
        "LINKED_PAYMENT",
        date(2034, 12, 31),
    )


def test_after_erasure_request_policy_no_longer_counts_and_stub_grows(session) -> None:
    policy = load_policy({"rules": {"order": {"eoy_years": 9}, "payment": {"eoy_years": 9}}})
    engine = RetentionEngine(policy=policy)
    order = make_order(session, buyer=CONSUMER, status=OrderStatus.PAID)
    payment = make_payment(session, order, paid_at=at(2026, 5, 3))
    retag_order(session, engine, order.id)
    assert payment.retain_until == date(2035, 12, 31)
    assert payment.retention_basis == "POLICY_PAYMENT_9Y"

    session.add(CustomerStub(customer_ref=order.customer_ref, erased_at=at(2026, 11, 23)))
    order.restricted_at = at(2026, 11, 23)
    retag_order(session, engine, order.id)
    # Statutory rules only: income tax and civil claims tie on 2032-12-31.
    assert payment.retain_until == date(2032, 12, 31)
    assert payment.retention_basis == f"{CIT}+PL_KC_118"
    assert payment.restricted_at is not None
    assert payment.restriction_reason.startswith("GDPR art. 17(3)(b): Tax Ordinance art. 86")
    stub = session.get(CustomerStub, order.customer_ref)
    assert (stub.retention_basis, stub.retain_until) == ("GDPR_17_3_B_STUB", date(2032, 12, 31))
