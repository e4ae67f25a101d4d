"""A correction inherits its original's legal hold: in the invoices API and in the purge.

A refund of a held invoice produces a correction; it shows `legal_hold: true` in
`GET /v1/invoices` (before and after it is issued) and survives `kwit retention run` past its
retain_until, while the unheld invoice and correction of the same run are purged.
"""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from compliance.tags import retag_order
from models import Invoice, InvoiceKind, InvoiceState, Order, Payment, Refund, RefundStatus
from service.cli import cli
from tests.factories import make_issued_invoice, make_refund
from tests.support import auth

REFUNDED_AT = datetime(2027, 2, 5, 9, 0, tzinfo=UTC)
# The corrections (CIT year 2027) and so their originals are kept to 2033-12-31.
CORRECTION_UNTIL = date(2033, 12, 31)


@pytest.fixture
def rt(app):
    return app.extensions["kwit"]


def sold_and_refunded(rt, customer_ref: str) -> dict[str, str]:
    """An invoice of 2026-06-10, refunded on 2027-02-05; its correction is queued (pending)."""
    with rt.sessions.begin() as s:
        original = make_issued_invoice(
            s, blobs=rt.blobs, issue_date=date(2026, 6, 10), customer_ref=customer_ref
        )
        payment = s.scalars(sa.select(Payment).where(Payment.order_id == original.order_id)).one()
        refund = make_refund(
            s, payment, amount_minor=5000, status=RefundStatus.SUCCESSFUL, completed_at=REFUNDED_AT
        )
        # What the refund webhook queues: a pending correction that does not yet name the
        # invoice it corrects (the pipeline fills corrects_invoice_id when it builds it).
        correction = Invoice(
            order_id=original.order_id,
            kind=InvoiceKind.CORRECTION,
            dedupe_key=f"correction:{refund.id}",
            refund_id=refund.id,
            state=InvoiceState.PENDING,
            provider=original.provider,
            provider_payment_id=payment.provider_payment_id,
            gross_minor=refund.amount_minor,
            currency="PLN",
            paid_at=REFUNDED_AT,
        )
        s.add(correction)
        s.flush()
        return {
            "original": original.id,
            "correction": correction.id,
            "order": original.order_id,
            "refund": refund.id,
        }


def issue_correction(rt, ids: dict[str, str]) -> None:
    """What the pipeline records when iFirma issued the correction, then the retention tags."""
    with rt.sessions.begin() as s:
        correction = s.get(Invoice, ids["correction"])
        correction.state = InvoiceState.ISSUED
        correction.corrects_invoice_id = ids["original"]
        correction.issue_date = REFUNDED_AT.date()
        correction.sale_date = date(2026, 6, 10)
        correction.number = f"KOR/{ids['correction'][-4:]}/2/2027"
        correction.issued_at = REFUNDED_AT
        retag_order(s, rt.retention, ids["order"])


def legal_holds(client, headers) -> dict[str, bool]:
    response = client.get("/v1/invoices?limit=500", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {item["id"]: item["legal_hold"] for item in response.get_json()["items"]}


def test_correction_of_a_held_invoice_is_held_in_the_api_and_survives_the_purge(
    client, rt, make_key, db_url, tmp_path: Path
) -> None:
    held = sold_and_refunded(rt, "cust-audited")
    free = sold_and_refunded(rt, "cust-free")
    hold = client.post(
        "/v1/legal-holds",
        json={"scope": "invoice", "value": held["original"], "reason": "tax audit VAT 2026-06"},
        headers=auth(make_key("admin")),
    )
    assert hold.status_code == 201, hold.get_json()
    accountant = auth(make_key("accountant"))

    assert legal_holds(client, accountant) == {
        held["original"]: True,
        held["correction"]: True,  # pending: inherits through the order's sale invoice
        free["original"]: False,
        free["correction"]: False,
    }

    issue_correction(rt, held)
    issue_correction(rt, free)
    with rt.sessions() as s:
        for ids in (held, free):
            assert s.get(Invoice, ids["correction"]).retain_until == CORRECTION_UNTIL
            assert s.get(Invoice, ids["original"]).retain_until == CORRECTION_UNTIL
    assert legal_holds(client, accountant)[held["correction"]] is True
    one = client.get(f"/v1/invoices/{held['correction']}", headers=accountant).get_json()
    assert one["legal_hold"] is True
    assert (
        client.get(f"/v1/invoices/{free['correction']}", headers=accountant).get_json()[
            "legal_hold"
        ]
        is False
    )

    env = {"KWIT_DATABASE_URL": db_url, "KWIT_BLOB_DIR": str(tmp_path / "blobs")}
    result = CliRunner().invoke(
        cli, ["retention", "run", "--as-of", "2034-01-01"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output

    with rt.sessions() as s:
        for kept in (held["original"], held["correction"]):
            assert s.get(Invoice, kept) is not None
        assert s.get(Refund, held["refund"]) is not None
        assert s.get(Order, held["order"]) is not None
        for gone in (free["original"], free["correction"]):
            assert s.get(Invoice, gone) is None
        assert s.get(Refund, free["refund"]) is None
        assert s.get(Order, free["order"]) is None


def test_a_page_of_invoices_costs_the_same_queries_whatever_its_size(client, rt, make_key) -> None:
    headers = auth(make_key("accountant"))
    with rt.sessions.begin() as s:
        first = make_issued_invoice(s, customer_ref="cust-1").id
    client.post(
        "/v1/legal-holds",
        json={"scope": "customer_ref", "value": "cust-9", "reason": "court case"},
        headers=auth(make_key("admin")),
    )

    def statements(limit: int) -> int:
        seen: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:
            seen.append(statement)

        sa.event.listen(rt.engine, "before_cursor_execute", count)
        try:
            response = client.get(f"/v1/invoices?limit={limit}", headers=headers)
        finally:
            sa.event.remove(rt.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        assert len(response.get_json()["items"]) == limit
        return len(seen)

    one = statements(1)
    with rt.sessions.begin() as s:
        for n in range(11):
            make_issued_invoice(s, customer_ref=f"cust-{n}")
    assert statements(12) == one
    assert legal_holds(client, headers)[first] is False
