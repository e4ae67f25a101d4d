"""The purge against real databases: dates, holds, anonymisation, PDFs, idempotence."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from compliance import purge
from compliance.purge_plan import ANONYMISED_ITEM
from compliance.tags import retag_order
from models import (
    AuditEntry,
    EventOutcome,
    HoldScope,
    Invoice,
    LegalHold,
    LoginAttempt,
    Order,
    Payment,
    WebhookEvent,
)
from tests.factories import make_event, make_issued_invoice

# Invoice issued 2026-06-10 (business buyer): invoice and payment to 2032-12-31, the order
# (Accounting Act art. 74 ust. 2 pkt 4) to 2031-12-31, an ignored event to 2026-09-08.
INVOICE_UNTIL = date(2032, 12, 31)
ORDER_UNTIL = date(2031, 12, 31)


@pytest.fixture
def rt(app):
    return app.extensions["kwit"]


@pytest.fixture
def tree(rt):
    """One issued invoice with its PDF, order, payment and two events, tagged by retag_order."""
    with rt.sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=rt.blobs, issue_date=date(2026, 6, 10))
        order = s.get(Order, invoice.order_id)
        order.billing = rt.vault.encrypt({"name": "Jan Kowalski"})
        order.continue_url = "https://shop.example/thanks?u=42"
        payment = s.scalars(sa.select(Payment).where(Payment.order_id == order.id)).one()
        make_event(s, order, pid=payment.provider_payment_id)
        make_event(s, order, pid=None, outcome=EventOutcome.IGNORED)
        retag_order(s, rt.retention, order.id)
        ids = {
            "invoice": invoice.id,
            "order": order.id,
            "payment": payment.id,
            "pdf": invoice.pdf_key,
        }
    return ids


def run(rt, today, *, dry_run=False):
    with rt.sessions() as s:
        plan = purge.plan(s, rt.retention, today=today)
        if dry_run:
            return purge.PurgeReport.from_plan(plan, dry_run=True)
        report = purge.execute(s, rt.blobs, plan)
        s.commit()
    return report


def exists(rt, model, row_id) -> bool:
    with rt.sessions() as s:
        return s.get(model, row_id) is not None


def test_nothing_goes_before_or_on_retain_until(rt, tree) -> None:
    for today in (date(2032, 12, 30), INVOICE_UNTIL):
        report = run(rt, today)
        assert report.counts["invoices"]["deleted"] == 0
        assert report.counts["payments"]["deleted"] == 0
    assert exists(rt, Invoice, tree["invoice"])
    assert rt.blobs.exists(tree["pdf"])


def test_expired_order_with_live_invoice_is_anonymised_once(rt, tree) -> None:
    report = run(rt, date(2032, 6, 1))
    assert report.counts["orders"] == {
        "eligible": 1,
        "held": 0,
        "deleted": 0,
        "anonymised": 1,
        "kept": 0,
    }
    assert report.counts["webhook_events"]["deleted"] == 1  # the ignored one, 90 days
    with rt.sessions() as s:
        order = s.get(Order, tree["order"])
        assert order.billing is None
        assert order.continue_url is None
        assert [i["name"] for i in order.items] == [ANONYMISED_ITEM]
        assert order.items[0]["unit_gross_minor"] == 12300
        assert (order.gross_minor, order.customer_ref) == (12300, "cust-1")
    again = run(rt, date(2032, 6, 1))
    assert again.total("deleted") == again.total("anonymised") == 0
    assert again.counts["orders"]["kept"] == 1


def test_day_after_everything_goes_with_the_pdf_and_a_second_run_finds_nothing(rt, tree) -> None:
    dry = run(rt, date(2033, 1, 1), dry_run=True)
    assert rt.blobs.exists(tree["pdf"])
    assert exists(rt, Invoice, tree["invoice"])

    report = run(rt, date(2033, 1, 1))
    assert report.counts == dry.counts
    for kind in ("invoices", "payments", "orders"):
        assert report.counts[kind]["deleted"] == 1, kind
    assert report.counts["webhook_events"]["deleted"] == 2
    assert report.blobs == [tree["pdf"]]
    assert report.blobs_deleted == 1
    assert not rt.blobs.exists(tree["pdf"])
    for model, key in ((Invoice, "invoice"), (Order, "order"), (Payment, "payment")):
        assert not exists(rt, model, tree[key])

    again = run(rt, date(2033, 1, 1))
    assert again.total("eligible") == again.total("deleted") == 0


@pytest.mark.parametrize(
    ("scope", "key"),
    [("customer_ref", None), ("order", "order"), ("invoice", "invoice"), ("all", None)],
)
def test_held_rows_survive_until_the_hold_is_released(rt, tree, scope, key) -> None:
    value = "cust-1" if scope == "customer_ref" else tree.get(key) if key else None
    with rt.sessions.begin() as s:
        hold = LegalHold(
            scope=HoldScope(scope), scope_value=value, reason="tax audit", created_by="test"
        )
        s.add(hold)
        s.flush()
        hold_id = hold.id

    held = run(rt, date(2033, 1, 1))
    assert held.counts["invoices"] == {**held.counts["invoices"], "held": 1, "deleted": 0}
    assert held.counts["payments"]["held"] == 1
    assert held.counts["orders"]["deleted"] == 0
    assert rt.blobs.exists(tree["pdf"])
    assert exists(rt, Invoice, tree["invoice"])

    with rt.sessions.begin() as s:
        s.get(LegalHold, hold_id).released_at = datetime(2033, 1, 2, tzinfo=UTC)
    released = run(rt, date(2033, 1, 3))
    assert released.counts["invoices"]["deleted"] == 1
    assert released.counts["orders"]["deleted"] == 1
    assert not rt.blobs.exists(tree["pdf"])


def test_pdf_stays_when_the_transaction_rolls_back(rt, tree) -> None:
    with rt.sessions() as s:
        report = purge.execute(s, rt.blobs, purge.plan(s, rt.retention, today=date(2033, 1, 1)))
        s.rollback()
    assert report.blobs_deleted == 0
    assert rt.blobs.exists(tree["pdf"])
    assert exists(rt, Invoice, tree["invoice"])


def test_log_rows_by_date_and_untagged_logs_get_their_default_rule(rt) -> None:
    old = datetime(2026, 1, 10, tzinfo=UTC)
    with rt.sessions.begin() as s:
        s.add_all(
            [
                AuditEntry(id="A1", actor="x", action="a", at=old, retain_until=date(2027, 1, 10)),
                AuditEntry(id="A2", actor="x", action="a", at=old, retain_until=date(2027, 1, 11)),
                AuditEntry(id="A3", actor="x", action="a", at=old),  # never tagged
                LoginAttempt(id="L1", reason="invalid", at=old, retain_until=date(2026, 4, 10)),
            ]
        )
    report = run(rt, date(2027, 1, 11))
    assert report.counts["audit_log"]["deleted"] == 2  # A1, and A3 by its 365-day default
    assert report.counts["login_attempts"]["deleted"] == 1
    assert exists(rt, AuditEntry, "A2")
    with rt.sessions() as s:
        # Without an engine an untagged row is never selected (unknown basis means keep).
        s.add(AuditEntry(id="A4", actor="x", action="a", at=old))
        s.commit()
        assert purge.plan(s, None, today=date(2099, 1, 1)).kinds["audit_log"].eligible == ["A2"]


def test_events_of_a_purged_order_outlive_it_when_still_in_their_window(rt) -> None:
    with rt.sessions.begin() as s:
        invoice = make_issued_invoice(s, issue_date=date(2026, 6, 10))
        order = s.get(Order, invoice.order_id)
        retag_order(s, rt.retention, order.id)
        late = make_event(
            s,
            order,
            pid=None,
            outcome=EventOutcome.IGNORED,
            received=datetime(2032, 12, 1, tzinfo=UTC),
        )
        late.retain_until = date(2033, 3, 1)
        late_id = late.id
    run(rt, date(2033, 1, 1))
    with rt.sessions() as s:
        event = s.get(WebhookEvent, late_id)
        assert event is not None
        assert event.order_id is None  # ON DELETE SET NULL
