"""The invoice job against the iFirma emulator over HTTP: exactly one invoice, whatever fails."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa

from emulators import ifirma as ifirma_emulator
from invoicing import jobs
from invoicing.context import Services
from models import Invoice, InvoiceState, Order, OutboxItem, OutboxState, utcnow
from service.app import create_app
from service.worker import job_context
from tests.support import (
    IFIRMA_KEY,
    IFIRMA_USER,
    STRIPE_SECRET,
    assert_problem,
    auth,
    make_settings,
)
from webhooks import samples, stripe


@pytest.fixture
def emulator():
    server, base = ifirma_emulator.start_in_thread(
        user=IFIRMA_USER, keys={"faktura": IFIRMA_KEY, "abonent": IFIRMA_KEY}
    )
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(db_url, tmp_path, emulator):
    application = create_app(
        make_settings(
            db_url, tmp_path, ifirma_base_url=emulator, ifirma_timeout=3.0, job_lease_seconds=10
        )
    )
    yield application
    application.extensions["kwit"].close()


def fault(emulator: str, **body) -> None:
    requests.post(
        f"{emulator.removesuffix('/iapi')}/__emulator__/faults", json=body, timeout=5
    ).raise_for_status()


def emulator_state(emulator: str) -> dict:
    return requests.get(f"{emulator.removesuffix('/iapi')}/__emulator__/state", timeout=5).json()


def pay(
    client, suffix: str, event_type: str = "invoice.paid", *, event_id: str | None = None
) -> dict:
    now = int(time.time())
    event = samples.sample_event(event_type, now=now, suffix=suffix)
    if event_id:
        event["id"] = event_id
    body = samples.encode(event)
    response = client.post(
        "/webhooks/stripe",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": stripe.sign(body, STRIPE_SECRET, timestamp=now)},
    )
    assert response.status_code == 200
    return response.get_json()


def invoices(app) -> list[Invoice]:
    with app.extensions["kwit"].sessions() as session:
        return list(session.scalars(sa.select(Invoice).order_by(Invoice.created_at)))


_CLOCK_SHIFT = itertools.count(1)


def run_due(app) -> None:
    """Run every outbox item as a worker would, the clock moved two hours further each time."""
    rt = app.extensions["kwit"]
    later = timedelta(hours=2 * next(_CLOCK_SHIFT))
    ctx = dataclasses.replace(job_context(rt), clock=lambda: utcnow() + later)
    with rt.sessions() as session:
        ids = session.scalars(sa.select(OutboxItem.id)).all()
    for outbox_id in ids:
        jobs.run_outbox_item(outbox_id, ctx)


def marker_count(emulator: str, order_id: str) -> int:
    """How many sale invoices in the emulator carry this order's Kwit marker."""
    return sum(
        doc["kind"] == "faktura" and f"Kwit order {order_id}," in (doc["uwagi"] or "")
        for doc in emulator_state(emulator)["invoices"]
    )


def test_paid_order_is_invoiced_with_number_ksef_and_pdf(app, client, emulator) -> None:
    assert pay(client, "happy")["outcome"] == "applied"
    run_due(app)  # KSeF accepts after a poll
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.ISSUED
    assert invoice.number
    assert invoice.number.count("/") == 2
    assert invoice.ksef_number
    assert len(invoice.ksef_number) == 35
    assert invoice.pdf_key
    assert app.extensions["kwit"].blobs.read(invoice.pdf_key).startswith(b"%PDF-")
    assert invoice.retention_basis
    assert invoice.retain_until
    assert invoice.buyer_nip == samples.BUYER["nip"]
    assert invoice.totals == {"23": {"net_minor": 10000, "vat_minor": 2300, "gross_minor": 12300}}
    assert marker_count(emulator, invoice.order_id) == 1


def test_no_buyer_data_remains_once_issued(app, client) -> None:
    pay(client, "erase")
    run_due(app)
    rt = app.extensions["kwit"]
    with rt.sessions() as session:
        order = session.scalars(sa.select(Order)).one()
        invoice = session.scalars(sa.select(Invoice)).one()
        assert order.billing is None
        assert invoice.payload_encrypted is None
    dump = []
    with rt.engine.connect() as conn:
        from models import Base

        for table in Base.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                dump.extend(str(value) for value in row)
    text = "\n".join(dump)
    buyer = samples.BUYER
    for needle in (
        buyer["name"],
        buyer["email"],
        buyer["address"]["line1"],
        buyer["address"]["postal_code"],
        "Marszałkowska",
    ):
        assert needle not in text


def test_lost_response_after_create_is_reconciled_not_reposted(app, client, emulator) -> None:
    fault(emulator, mode="lose_response", route="fakturakraj.json", method="POST", n=1)
    pay(client, "lost")
    run_due(app)
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.ISSUED
    assert marker_count(emulator, invoice.order_id) == 1


def test_500_after_create_is_reconciled_not_reposted(app, client, emulator) -> None:
    fault(emulator, mode="error_after_create", route="fakturakraj.json", method="POST", n=1)
    pay(client, "err")
    run_due(app)
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.ISSUED
    assert marker_count(emulator, invoice.order_id) == 1


def test_transient_failures_retry_until_issued(app, client, emulator) -> None:
    fault(emulator, mode="fail_n", route="fakturakraj.json", method="POST", n=2)
    pay(client, "flaky")
    assert invoices(app)[0].state is not InvoiceState.ISSUED
    for _ in range(3):
        run_due(app)
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.ISSUED
    assert marker_count(emulator, invoice.order_id) == 1


def test_validation_error_fails_without_retry_storm_then_retry_issues(
    app, client, emulator, make_key
) -> None:
    fault(
        emulator,
        mode="kod_201",
        route="fakturakraj.json",
        method="POST",
        n=1,
        message="Data sprzedaży spoza ustawionego miesiąca księgowego",
    )
    pay(client, "invalid")
    for _ in range(3):
        run_due(app)
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.FAILED
    assert "miesiąca księgowego" in invoice.last_error
    assert invoice.attempts == 1  # parked: no retry storm
    with app.extensions["kwit"].sessions() as session:
        assert session.scalars(sa.select(OutboxItem)).one().state is OutboxState.DEAD
    admin = auth(make_key("admin"))
    shown = client.get(f"/v1/invoices/{invoice.id}", headers=admin).get_json()
    assert shown["state"] == "failed"
    assert "miesiąca" in shown["last_error"]

    retried = client.post(f"/v1/invoices/{invoice.id}/retry", headers=admin)
    assert retried.status_code == 202
    run_due(app)
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.ISSUED
    assert marker_count(emulator, invoice.order_id) == 1
    again = client.post(f"/v1/invoices/{invoice.id}/retry", headers=admin)
    assert_problem(again, 409)


def test_retry_needs_admin(app, client, make_key) -> None:
    pay(client, "roles")
    [invoice] = invoices(app)
    response = client.post(f"/v1/invoices/{invoice.id}/retry", headers=auth(make_key("accountant")))
    assert_problem(response, 403)


def test_two_invoices_with_our_marker_make_it_unknown(app, client, emulator) -> None:
    # The answer to the POST is lost and the first reconciliation cannot list invoices…
    fault(emulator, mode="lose_response", route="fakturakraj.json", method="POST", n=1)
    fault(emulator, mode="fail_n", route="faktury.json", method="GET", n=1)
    pay(client, "twice")
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.CALLING
    # …and meanwhile someone re-creates the invoice by hand in iFirma with the same remarks.
    rt = app.extensions["kwit"]
    payload = json.loads(rt.vault.decrypt_bytes(invoice.payload_encrypted), parse_float=Decimal)
    Services.of(job_context(rt)).ifirma.create_invoice(payload)
    run_due(app)
    [invoice] = invoices(app)
    assert invoice.state is InvoiceState.UNKNOWN
    assert "2 iFirma invoices" in invoice.last_error
    assert marker_count(emulator, invoice.order_id) == 2  # Kwit posted nothing more


def test_refund_produces_one_correction(app, client, emulator) -> None:
    pay(client, "refund")
    run_due(app)
    assert pay(client, "refund", "charge.refunded")["outcome"] == "applied"
    # Stripe sends the same refund again under another event id: nothing more to correct.
    again = pay(client, "refund", "charge.refunded", event_id="evt_refund_again")
    assert again["outcome"] == "stale"
    run_due(app)
    sale, correction = invoices(app)
    assert correction.kind.value == "correction"
    assert correction.state is InvoiceState.ISSUED
    assert correction.corrects_invoice_id == sale.id
    assert correction.number.endswith("/K")
    assert correction.retain_until >= sale.retain_until
    # A full refund: the correction books the whole sale back, as a signed difference.
    assert correction.gross_minor == -sale.gross_minor
    assert sum(t["gross_minor"] for t in correction.totals.values()) == -12300
