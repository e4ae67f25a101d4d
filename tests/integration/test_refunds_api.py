"""Create, pay and refund over real HTTP: Kwit and the PayNow emulator each serve on a thread,
the emulator notifies Kwit, and `sync_once` follows the refunds (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from emulators import paynow as paynow_emulator
from models import Invoice, InvoiceKind, OrderStatus, OutboxItem, Payment, Refund, RefundStatus
from service.app import create_app
from service.providers import PAYNOW_RETRIES
from service.worker import paynow_sync_once as sync_once
from tests.factories import make_order, make_payment
from tests.support import PAYNOW_API_KEY, PAYNOW_SIGNATURE_KEY, make_settings

GROSS = 24600
ZERO = timedelta(0)


@pytest.fixture
def stack(db_url, tmp_path, make_key):
    """(kwit base URL, emulator base URL, app, backend token), with notifications to Kwit."""
    emulator, emulator_base = paynow_emulator.start_in_thread(
        api_key=PAYNOW_API_KEY, signature_key=PAYNOW_SIGNATURE_KEY, notify_url=None
    )
    app = create_app(make_settings(db_url, tmp_path, paynow_base_url=emulator_base))
    kwit = make_server("127.0.0.1", 0, app, threaded=True)
    # server_close() then waits for request threads, so none still holds a database connection
    # when the engine is disposed below.
    kwit.daemon_threads = False
    threading.Thread(target=kwit.serve_forever, args=(0.05,), daemon=True).start()
    kwit_base = f"http://127.0.0.1:{kwit.server_port}"
    emulator.app.extensions["paynow_emulator"].notify_url = f"{kwit_base}/webhooks/paynow"
    yield kwit_base, emulator_base, app, make_key("backend")
    for server in (kwit, emulator):
        server.shutdown()
        server.server_close()
    app.extensions["kwit"].close()


def call(method: str, url: str, token: str, json: Any = None, key: str | None = None):
    headers = {"Authorization": f"Bearer {token}"}
    if method == "POST":
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
    return requests.request(method, url, json=json, headers=headers, timeout=30)


def fault(emulator: str, **switches: Any) -> None:
    requests.post(f"{emulator}/__emulator__/faults", json=switches, timeout=5).raise_for_status()


def emulator_refunds(emulator: str) -> list[dict]:
    state = requests.get(f"{emulator}/__emulator__/state", timeout=5).json()
    return [r for p in state["payments"] for r in p["refunds"]]


def paid_order(stack) -> dict:
    """An order created through Kwit, paid on the emulator's paywall, notified back to Kwit."""
    kwit, emulator, _app, token = stack
    body = {
        "external_ref": f"shop-{uuid.uuid4().hex[:10]}",
        "customer_ref": "cust-9",
        "currency": "PLN",
        "provider": "paynow",
        "items": [
            {"name": "Plan Pro", "quantity": 2, "unit_gross_minor": GROSS // 2, "vat_rate": "23"}
        ],
        "buyer": {
            "name": "Firma Testowa sp. z o.o.",
            "nip": "5260250995",
            "email": "ksiegowosc@firma.example.pl",
            "address": {"line1": "ul. Prosta 1", "postal_code": "00-838", "city": "Warszawa"},
        },
    }
    created = call("POST", f"{kwit}/v1/orders", token, body)
    assert created.status_code == 201, created.text
    payment_id = created.json()["payments"][0]["provider_payment_id"]
    paid = requests.post(f"{emulator}/paywall/{payment_id}/pay", timeout=30).json()
    assert [n["deliveries"] for n in paid["notifications"]] == [[200], [200]]
    order = call("GET", f"{kwit}/v1/orders/{created.json()['id']}", token).json()
    assert order["status"] == "paid"
    assert order["payments"][0]["status"] == "CONFIRMED"
    return order


def refund(stack, order_id: str, amount: int, reason: str = "RMA", key: str | None = None):
    kwit, _emulator, _app, token = stack
    return call(
        "POST",
        f"{kwit}/v1/orders/{order_id}/refunds",
        token,
        {"amount_minor": amount, "reason": reason},
        key,
    )


def rows(app, model, *where) -> list[Any]:
    with app.extensions["kwit"].sessions() as session:
        return list(session.scalars(sa.select(model).where(*where)))


def test_create_pay_refund_and_follow_the_refund(stack) -> None:
    _kwit, emulator, app, _token = stack
    order = paid_order(stack)
    response = refund(stack, order["id"], 5000)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "NEW"
    assert created["amount_minor"] == 5000
    assert (created["order_id"], created["provider"], created["currency"]) == (
        order["id"],
        "paynow",
        "PLN",
    )
    [remote] = emulator_refunds(emulator)
    assert (remote["id"], remote["amount"], remote["reason"]) == (
        created["provider_refund_id"],
        5000,
        "RMA",
    )
    rt = app.extensions["kwit"]
    report = sync_once(rt, min_age=ZERO)
    assert report.refunds_updated == 1  # NEW → PENDING (the emulator moves one step per poll)
    assert rows(app, Refund)[0].status is RefundStatus.PENDING
    report = sync_once(rt, min_age=ZERO)
    assert (report.refunds_updated, report.refunds_completed) == (1, 1)
    [stored] = rows(app, Refund)
    assert stored.status is RefundStatus.SUCCESSFUL
    assert stored.completed_at is not None
    [correction] = rows(app, Invoice, Invoice.kind == InvoiceKind.CORRECTION)
    assert (correction.refund_id, correction.gross_minor) == (stored.id, 5000)
    assert rows(app, OutboxItem, OutboxItem.ref_id == correction.id)
    assert sync_once(rt, min_age=ZERO).refunds_checked == 0  # final: no longer polled
    shown = call("GET", f"{stack[0]}/v1/orders/{order['id']}", stack[3]).json()
    assert shown["status"] == "partially_refunded"
    assert shown["refunds"][0]["status"] == "SUCCESSFUL"


def test_refunds_may_not_exceed_the_payment(stack) -> None:
    order = paid_order(stack)
    assert refund(stack, order["id"], GROSS - 100).status_code == 201
    too_much = refund(stack, order["id"], 101)
    assert too_much.status_code == 422
    assert too_much.headers["Content-Type"] == "application/problem+json"
    problem = too_much.json()
    assert "amount_minor" in problem["errors"]
    assert problem["refundable_minor"] == 100
    assert refund(stack, order["id"], 100).status_code == 201
    assert len(emulator_refunds(stack[1])) == 2


def test_a_refused_refund_is_failed_and_frees_its_amount(stack) -> None:
    _kwit, emulator, app, _token = stack
    order = paid_order(stack)
    fault(emulator, insufficient_balance=True)
    refused = refund(stack, order["id"], GROSS)
    assert refused.status_code == 422
    assert refused.json()["reason"] == "paynow_refused"
    assert refused.json()["paynow_errors"] == ["INSUFFICIENT_BALANCE_FUNDS"]
    [failed] = rows(app, Refund)
    assert failed.status is RefundStatus.FAILED
    fault(emulator, insufficient_balance=False)
    assert refund(stack, order["id"], GROSS).status_code == 201  # FAILED ones do not count


def test_lost_refund_call_is_resumed_by_the_same_request(stack) -> None:
    _kwit, emulator, app, _token = stack
    order = paid_order(stack)
    fault(emulator, fail_n=PAYNOW_RETRIES + 1)
    key = str(uuid.uuid4())
    lost = refund(stack, order["id"], 3000, key=key)
    assert lost.status_code == 502
    [pending] = rows(app, Refund)
    assert lost.json()["refund_id"] == pending.id
    assert (pending.status, pending.provider_refund_id) == (RefundStatus.NEW, None)
    retried = refund(stack, order["id"], 3000, key=key)
    assert retried.status_code == 201
    assert retried.json()["id"] == pending.id
    assert len(emulator_refunds(emulator)) == 1
    replay = refund(stack, order["id"], 3000, key=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == retried.content
    # A new key is a new refund.
    assert refund(stack, order["id"], 3000).json()["id"] != pending.id
    assert len(emulator_refunds(emulator)) == 2


def test_lost_refund_call_is_resumed_by_sync(stack) -> None:
    _kwit, emulator, app, _token = stack
    order = paid_order(stack)
    fault(emulator, lose_create_response=0, fail_n=PAYNOW_RETRIES + 1)
    assert refund(stack, order["id"], 3000).status_code == 502
    report = sync_once(app.extensions["kwit"], min_age=ZERO)
    assert report.refunds_resumed == 1
    [stored] = rows(app, Refund)
    [remote] = emulator_refunds(emulator)
    assert stored.provider_refund_id == remote["id"]
    assert stored.status is RefundStatus.NEW


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount_minor": 0, "reason": "RMA"}, "amount_minor"),
        ({"amount_minor": -5, "reason": "RMA"}, "amount_minor"),
        ({"amount_minor": "100", "reason": "RMA"}, "amount_minor"),
        ({"amount_minor": 100, "reason": "BORED"}, "reason"),
        ({"amount_minor": 100}, "reason"),
    ],
)
def test_invalid_refunds_are_422(stack, data: dict, field: str) -> None:
    kwit, _emulator, app, token = stack
    with app.extensions["kwit"].sessions.begin() as session:
        order_id = make_order(session).id
    response = call("POST", f"{kwit}/v1/orders/{order_id}/refunds", token, data)
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_unpaid_unknown_and_stripe_orders_are_refused(stack) -> None:
    app = stack[2]
    rt = app.extensions["kwit"]
    with rt.sessions.begin() as session:
        unpaid = make_order(session).id
        stripe_order = make_order(session, provider="stripe", status=OrderStatus.PAID)
        make_payment(session, stripe_order, status="paid", paid_at=datetime.now(UTC))
        stripe_id = stripe_order.id
    assert refund(stack, unpaid, 100).json()["reason"] == "order_not_paid"
    assert refund(stack, stripe_id, 100).json()["reason"] == "refund_at_provider"
    assert refund(stack, "01NOSUCHORDER0000000000000", 100).status_code == 404
    assert rows(app, Refund) == []
    assert len(rows(app, Payment)) == 1
