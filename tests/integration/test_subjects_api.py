"""GDPR export and erasure: what is deleted, what stays restricted and why, and the audit trail."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from compliance.restriction import LOG_WINDOW_REASON
from compliance.subject_erase import BILLING_KEPT, erase
from compliance.subject_export import UnknownSubject, export
from compliance.tags import retag_order
from models import (
    AuditEntry,
    CustomerStub,
    EventOutcome,
    HoldScope,
    Invoice,
    InvoiceState,
    LegalHold,
    Order,
    OrderStatus,
    Payment,
)
from tests.factories import BUYER, make_event, make_issued_invoice, make_order, make_payment
from tests.support import assert_problem, auth

CONSUMER = {**BUYER, "name": "Jan Kowalski", "nip": None, "email": "jan@example.pl"}
REF = "cus_9"


def customer(rt, now: datetime) -> dict[str, str]:
    """Three orders of one consumer as of ``now``: invoiced, awaiting its invoice, never paid."""
    with rt.sessions.begin() as s:
        paid_at = now - timedelta(days=53)
        invoiced = make_order(
            s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF, status=OrderStatus.PAID
        )
        pay = make_payment(s, invoiced, paid_at=paid_at)
        invoice = make_issued_invoice(
            s, blobs=rt.blobs, order=invoiced, issue_date=paid_at.date(), nip=None
        )
        applied = make_event(
            s, invoiced, pid=pay.provider_payment_id, outcome=EventOutcome.APPLIED, received=paid_at
        )
        recent = make_event(
            s, invoiced, pid=None, outcome=EventOutcome.IGNORED, received=now - timedelta(days=3)
        )
        old = make_event(
            s, invoiced, pid=None, outcome=EventOutcome.IGNORED, received=now - timedelta(days=300)
        )
        retag_order(s, rt.retention, invoiced.id)

        waiting = make_order(
            s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF, status=OrderStatus.PAID
        )
        make_payment(s, waiting, paid_at=now - timedelta(days=1))
        s.add(
            Invoice(
                order_id=waiting.id,
                dedupe_key=f"sale:{waiting.id}",
                state=InvoiceState.FAILED,
                provider=waiting.provider,
                gross_minor=waiting.gross_minor,
                currency="PLN",
                payload_encrypted=rt.vault.encrypt(CONSUMER),
            )
        )
        retag_order(s, rt.retention, waiting.id)

        unpaid = make_order(s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF)
        unpaid_pay = make_payment(s, unpaid, status="PENDING", paid_at=None)
        unpaid_event = make_event(
            s,
            unpaid,
            pid=unpaid_pay.provider_payment_id,
            outcome=EventOutcome.APPLIED,
            received=now,
        )
        return {
            "invoiced": invoiced.id,
            "invoice": invoice.id,
            "pdf": invoice.pdf_key,
            "applied": applied.id,
            "recent": recent.id,
            "old": old.id,
            "waiting": waiting.id,
            "unpaid": unpaid.id,
            "unpaid_payment": unpaid_pay.id,
            "unpaid_event": unpaid_event.id,
        }


@pytest.fixture
def rt(app):
    return app.extensions["kwit"]


@pytest.fixture
def admin(make_key) -> dict[str, str]:
    return auth(make_key("admin", "dpo"))


def by_id(report) -> dict[str, dict]:
    return {r["id"]: r for r in report["records"]}


def test_erase_through_the_api(client, app, rt, admin) -> None:
    ids = customer(rt, datetime.now(UTC))
    before = client.get(f"/v1/subjects/{REF}/export", headers=admin)
    assert before.status_code == 200
    data = before.get_json()
    assert {o["id"] for o in data["orders"]} == {ids["invoiced"], ids["waiting"], ids["unpaid"]}
    assert data["restricted"] is False
    first = next(o for o in data["orders"] if o["id"] == ids["invoiced"])
    assert first["billing"]["name"] == "Jan Kowalski"  # decrypted into the export
    assert first["invoices"][0]["number"]
    assert first["invoices"][0]["retention_basis_text"].startswith("Tax Ordinance art. 86")

    answer = client.post(f"/v1/subjects/{REF}/erase", headers=admin)
    assert answer.status_code == 200, answer.get_json()
    report = answer.get_json()
    rec = by_id(report)
    for key in ("unpaid", "unpaid_payment", "unpaid_event", "old"):
        assert rec[ids[key]]["action"] == "deleted", key
    assert rec[ids["invoice"]]["action"] == "restricted"
    assert rec[ids["invoice"]]["reason"].startswith("GDPR art. 17(3)(b): Tax Ordinance art. 86")
    assert rec[ids["invoiced"]]["billing"] == "erased"
    assert rec[ids["waiting"]]["billing"] == BILLING_KEPT
    assert rec[ids["recent"]]["action"] == "kept"  # a log keeps its 90-day window
    assert rec[ids["recent"]]["reason"] == LOG_WINDOW_REASON
    assert rec[ids["applied"]]["action"] == "restricted"
    assert report["summary"]["deleted"] == 4
    assert report["customer_stub"]["retain_until"] == rec[ids["invoice"]]["retain_until"]

    after = client.get(f"/v1/subjects/{REF}/export", headers=admin).get_json()
    assert after["restricted"] is True
    assert {o["id"] for o in after["orders"]} == {ids["invoiced"], ids["waiting"]}
    records = [
        r for o in after["orders"] for k in ("payments", "invoices", "webhook_events") for r in o[k]
    ]
    records += after["orders"]
    assert all(r["restricted"] and r["restriction_reason"] for r in records)
    kept = next(o for o in after["orders"] if o["id"] == ids["invoiced"])
    assert kept["billing"] is None
    assert kept["invoices"][0]["id"] == ids["invoice"]
    assert rt.blobs.exists(ids["pdf"])  # the invoice keeps its PDF
    waiting = next(o for o in after["orders"] if o["id"] == ids["waiting"])
    assert waiting["billing"]["name"] == "Jan Kowalski"
    assert after["customer_stub"]["retention_basis"] == "GDPR_17_3_B_STUB"

    with rt.sessions() as s:
        actions = s.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.action.like("subject.%"))
            .order_by(AuditEntry.at)
        ).all()
        failed = s.scalars(sa.select(Invoice).where(Invoice.order_id == ids["waiting"])).one()
        assert failed.payload_encrypted is not None  # still needed to issue the invoice
    assert actions == ["subject.export", "subject.erase", "subject.export"]


def test_unknown_customer_ref_is_404_and_audited(client, app, admin) -> None:
    assert_problem(client.get("/v1/subjects/nobody/export", headers=admin), 404)
    assert_problem(client.post("/v1/subjects/nobody/erase", headers=admin), 404)
    with app.extensions["kwit"].sessions() as s:
        rows = s.scalars(sa.select(AuditEntry).where(AuditEntry.action.like("subject.%"))).all()
    assert [(r.action, r.details) for r in rows] == [
        ("subject.export", {"found": False}),
        ("subject.erase", {"found": False}),
    ]


@pytest.mark.parametrize("role", ["backend", "accountant"])
def test_subject_endpoints_are_admin_only(client, make_key, role) -> None:
    headers = auth(make_key(role))
    assert_problem(client.get(f"/v1/subjects/{REF}/export", headers=headers), 403)
    assert_problem(client.post(f"/v1/subjects/{REF}/erase", headers=headers), 403)


def test_worked_example_8_with_an_injected_clock(rt) -> None:
    """Erasure on 2026-11-23; last invoice and payment 2026-10-01 → stub to 2032-12-31."""
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with rt.sessions.begin() as s:
        order = make_order(
            s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF, status=OrderStatus.PAID
        )
        make_payment(s, order, paid_at=datetime(2026, 10, 1, 9, tzinfo=UTC))
        invoice = make_issued_invoice(
            s, blobs=rt.blobs, order=order, issue_date=date(2026, 10, 1), nip=None
        )
        retag_order(s, rt.retention, order.id)
        invoice_id, order_id = invoice.id, order.id
    with rt.sessions.begin() as s:
        report = erase(s, rt.vault, rt.retention, REF, now=now)
    rec = by_id(report)
    assert rec[invoice_id]["retain_until"] == "2032-12-31"
    assert rec[invoice_id]["basis_text"].startswith("Tax Ordinance art. 86 §1")
    assert rec[order_id]["reason"].startswith("GDPR art. 17(3)(e): Civil Code art. 118")
    with rt.sessions() as s:
        stub = s.get(CustomerStub, REF)
        assert (stub.retain_until, stub.buyer_type) == (date(2032, 12, 31), "consumer")
        assert s.get(Invoice, invoice_id).restricted_at == now
        # Erasing again is harmless and answers the same.
        again = erase(s, rt.vault, rt.retention, REF, now=now + timedelta(days=1))
    assert {r["id"]: r["action"] for r in again["records"]} == {
        r["id"]: r["action"] for r in report["records"]
    }


def test_held_records_are_restricted_not_deleted(rt) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with rt.sessions.begin() as s:
        unpaid = make_order(s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF)
        payment = make_payment(s, unpaid, status="PENDING", paid_at=None)
        s.add(
            LegalHold(scope=HoldScope.CUSTOMER_REF, scope_value=REF, reason="court", created_by="t")
        )
        ids = (unpaid.id, payment.id)
    with rt.sessions.begin() as s:
        report = erase(s, rt.vault, rt.retention, REF, now=now)
    assert {r["id"]: r["action"] for r in report["records"]} == dict.fromkeys(ids, "restricted")
    assert all("legal hold" in r["reason"] for r in report["records"])
    with rt.sessions() as s:
        assert s.get(Order, ids[0]) is not None
        assert s.get(Payment, ids[1]) is not None


def test_nothing_retained_means_no_stub_and_export_is_404(rt) -> None:
    with rt.sessions.begin() as s:
        make_order(s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF)
    with rt.sessions.begin() as s:
        report = erase(s, rt.vault, rt.retention, REF, now=datetime(2026, 11, 23, tzinfo=UTC))
    assert report["customer_stub"] is None
    assert report["summary"] == {"deleted": 1, "restricted": 0, "kept": 0}
    with rt.sessions() as s, pytest.raises(UnknownSubject):
        export(s, rt.vault, REF)


def test_invoice_issued_after_the_erasure_is_restricted_and_extends_the_stub(rt) -> None:
    now = datetime(2026, 12, 20, 12, tzinfo=UTC)
    with rt.sessions.begin() as s:
        order = make_order(
            s, vault=rt.vault, buyer=CONSUMER, customer_ref=REF, status=OrderStatus.PAID
        )
        make_payment(s, order, paid_at=datetime(2026, 12, 18, tzinfo=UTC))
        invoice = Invoice(
            order_id=order.id,
            dedupe_key=f"sale:{order.id}",
            state=InvoiceState.PENDING,
            provider=order.provider,
            gross_minor=order.gross_minor,
            currency="PLN",
        )
        s.add(invoice)
        s.flush()
        order_id, invoice_id = order.id, invoice.id
    with rt.sessions.begin() as s:
        report = erase(s, rt.vault, rt.retention, REF, now=now)
    assert by_id(report)[order_id]["billing"] == BILLING_KEPT
    assert by_id(report)[invoice_id]["reason"].startswith("GDPR art. 17(3)(b): the invoice")
    assert report["customer_stub"]["retain_until"] == "2032-12-31"

    with rt.sessions.begin() as s:  # the invoice job issues it in January, then re-tags
        invoice = s.get(Invoice, invoice_id)
        invoice.state, invoice.issue_date = InvoiceState.ISSUED, date(2027, 1, 5)
        retag_order(s, rt.retention, order_id)
    with rt.sessions() as s:
        invoice = s.get(Invoice, invoice_id)
        assert invoice.retain_until == date(2033, 12, 31)
        assert invoice.restricted_at == now
        assert s.get(CustomerStub, REF).retain_until == date(2033, 12, 31)
