"""POST /v1/orders against the PayNow paynow_emulator over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from models import IdempotencyKey, Order, Payment
from service.app import create_app
from service.providers import PAYNOW_RETRIES
from tests.support import (
    assert_problem,
    auth,
    count_rows,
    make_settings,
)
from webhooks.paynow_client import PaynowClient, PaynowValidationError

BUYER = {
    "name": "Zofia Wójcik-Testowa",
    "nip": "PL 526-025-09-95",
    "email": "zofia.testowa@example.pl",
    "address": {
        "line1": "ul. Kwiatowa 17/3",
        "postal_code": "31-042",
        "city": "Kraków",
    },
}
# Everything that identifies the buyer above; none of it may be stored in plain text.
BUYER_STRINGS = ("Zofia", "Testowa", "zofia.testowa", "5260250995", "Kwiatowa", "31-042")


def order_body(**changes: Any) -> dict[str, Any]:
    body = {
        "external_ref": f"shop-{uuid.uuid4().hex[:12]}",
        "customer_ref": "cust-42",
        "currency": "PLN",
        "provider": "paynow",
        "items": [
            {
                "name": "Plan Pro (1 mies.)",
                "quantity": 2,
                "unit_gross_minor": 4920,
                "vat_rate": "23",
            },
            {"name": "Książka", "quantity": 1, "unit_gross_minor": 3990, "vat_rate": "5"},
        ],
        "buyer": copy.deepcopy(BUYER),
        "continue_url": "https://shop.example.pl/thanks",
    }
    body.update(changes)
    return body


def post_order(client, token: str, body: dict[str, Any], key: str | None = None):
    headers = auth(token) | {"Idempotency-Key": key or str(uuid.uuid4())}
    return client.post("/v1/orders", json=body, headers=headers)


@pytest.fixture
def token(make_key) -> str:
    return make_key("backend")


def emulator_state(paynow_emulator: str) -> dict:
    return requests.get(f"{paynow_emulator}/__emulator__/state", timeout=5).json()


def fault(paynow_emulator: str, **switches: Any) -> None:
    requests.post(
        f"{paynow_emulator}/__emulator__/faults", json=switches, timeout=5
    ).raise_for_status()


def rows(app, model) -> list[Any]:
    with app.extensions["kwit"].sessions() as session:
        return list(session.scalars(sa.select(model)))


def test_paynow_order_gets_a_payment_and_a_redirect_url(
    client, app, token, paynow_emulator
) -> None:
    body = order_body()
    response = post_order(client, token, body)
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert created["redirect_url"].startswith(f"{paynow_emulator}/paywall/")
    assert created["external_ref"] == body["external_ref"]
    assert created["gross_minor"] == 2 * 4920 + 3990
    assert created["status"] == "pending"
    assert created["billing_held"] is True
    assert created["items"][1] == body["items"][1]
    [payment] = created["payments"]
    assert (payment["provider"], payment["status"]) == ("paynow", "NEW")
    assert payment["amount_minor"] == created["gross_minor"]
    [remote] = emulator_state(paynow_emulator)["payments"]
    assert remote["id"] == payment["provider_payment_id"]
    assert remote["externalId"] == created["id"]  # PayNow links back by Kwit's order id
    assert remote["amount"] == created["gross_minor"]
    # The order reads back the same through the GET endpoints.
    got = client.get(f"/v1/orders/{created['id']}", headers=auth(token)).get_json()
    assert got["payments"][0]["provider_payment_id"] == payment["provider_payment_id"]


@pytest.mark.parametrize("provider", ["external", "stripe"])
def test_other_providers_just_register_the_order(
    client, app, token, paynow_emulator, provider
) -> None:
    body = order_body(provider=provider)
    del body["buyer"]["email"]  # only PayNow needs an e-mail
    response = post_order(client, token, body)
    assert response.status_code == 201
    assert response.get_json()["redirect_url"] is None
    assert response.get_json()["payments"] == []
    assert emulator_state(paynow_emulator)["payments"] == []


def test_buyer_is_stored_encrypted_and_normalised(client, app, token) -> None:
    created = post_order(client, token, order_body(provider="external")).get_json()
    consumer = order_body(provider="external")
    del consumer["buyer"]["nip"]
    consumer["buyer"]["address"] |= {"postal_code": "31042", "country": "pl"}
    other = post_order(client, token, consumer).get_json()
    rt = app.extensions["kwit"]
    with rt.sessions() as session:
        business = session.get(Order, created["id"])
        person = session.get(Order, other["id"])
        assert (business.buyer_type, person.buyer_type) == ("business", "consumer")
        assert rt.vault.decrypt(business.billing) == {
            "name": BUYER["name"],
            "email": BUYER["email"],
            "nip": "5260250995",  # "PL 526-025-09-95" normalised
            "tax_id": None,
            "line1": "ul. Kwiatowa 17/3",
            "line2": None,
            "postal_code": "31-042",
            "city": "Kraków",
            "country": "PL",
        }
        assert rt.vault.decrypt(person.billing)["postal_code"] == "31-042"
        assert rt.vault.decrypt(person.billing)["nip"] is None


def all_stored_values(app) -> str:
    """Every text, JSON and bytes value of every table in the database (reflected)."""
    engine = app.extensions["kwit"].engine
    meta = sa.MetaData()
    meta.reflect(engine)
    values: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        values.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        values.append(json.dumps(value, ensure_ascii=False, default=str))
    return "\n".join(values)


def test_database_holds_no_buyer_data_in_plain_text(client, app, token, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        ids = [post_order(client, token, order_body()).get_json()["id"] for _ in range(2)]
        ids.append(post_order(client, token, order_body(provider="external")).get_json()["id"])
    assert count_rows(app.extensions["kwit"].settings.database_url, "idempotency_keys") == 3
    dump = all_stored_values(app)
    for needle in BUYER_STRINGS:  # not in orders, payments, nor the stored idempotent answers
        assert needle not in dump, needle
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for needle in BUYER_STRINGS:
        assert needle not in logged, needle
    rt = app.extensions["kwit"]
    with rt.sessions() as session:
        for order_id in ids:
            billing = rt.vault.decrypt(session.get(Order, order_id).billing)
            assert (billing["name"], billing["email"], billing["nip"]) == (
                BUYER["name"],
                BUYER["email"],
                "5260250995",
            )
            assert (billing["line1"], billing["postal_code"]) == ("ul. Kwiatowa 17/3", "31-042")


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return body


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "error_path"),
    [
        ("buyer.nip", "5260250994", "buyer.nip"),  # checksum
        ("buyer.nip", "12345", "buyer.nip"),
        ("items.0.unit_gross_minor", 0, "items.0.unit_gross_minor"),
        ("items.0.unit_gross_minor", -4920, "items.0.unit_gross_minor"),
        ("items.1.unit_gross_minor", 39.9, "items.1.unit_gross_minor"),
        ("items.0.quantity", 0, "items.0.quantity"),
        ("items.0.quantity", "2", "items.0.quantity"),
        ("items.1.vat_rate", "22", "items.1.vat_rate"),
        ("items.1.vat_rate", 23, "items.1.vat_rate"),
        ("items.0.name", "", "items.0.name"),
        ("currency", "EUR", "currency"),
        ("currency", "XYZ", "currency"),
        ("items", [], "items"),
        ("items", _DELETE, "items"),
        ("external_ref", "x" * 101, "external_ref"),
        ("external_ref", "", "external_ref"),
        ("customer_ref", _DELETE, "customer_ref"),
        ("provider", "cash", "provider"),
        ("buyer.email", "not-an-email", "buyer.email"),
        ("buyer.email", _DELETE, "buyer.email"),  # PayNow needs it
        ("buyer.email", f"{'a' * 45}@example.pl", "buyer.email"),  # PayNow: at most 50
        ("buyer.name", "x" * 151, "buyer.name"),
        ("buyer.address.postal_code", "3104", "buyer.address.postal_code"),
        ("buyer.address.country", "POL", "buyer.address.country"),
        ("buyer.address", _DELETE, "buyer.address"),
        ("continue_url", "ftp://shop.example.pl/", "continue_url"),
        ("surprise", "field", "surprise"),
        ("items.0.unit_gross_minor", 40, "items"),  # total below PayNow's 1.00 PLN minimum
    ],
)
def test_invalid_orders_get_422_naming_the_field(
    client, app, token, paynow_emulator, path: str, value: Any, error_path: str
) -> None:
    body = _set(order_body(), path, value)
    if path == "items.0.unit_gross_minor" and value == 40:
        body["items"] = body["items"][:1]
        body["items"][0]["quantity"] = 1
    problem = assert_problem(post_order(client, token, body), 422)
    errors: Any = problem["errors"]
    for part in error_path.split("."):
        assert part in errors, (error_path, problem)
        errors = errors[part]
    assert errors
    assert problem["detail"].startswith("The request is invalid")
    # Nothing stored: no order, and the Idempotency-Key was released for a corrected retry.
    assert rows(app, Order) == []
    assert rows(app, IdempotencyKey) == []
    assert emulator_state(paynow_emulator)["payments"] == []


def test_existing_external_ref_with_a_new_key_is_a_conflict(client, app, token) -> None:
    body = order_body()
    first = post_order(client, token, body).get_json()
    changed = order_body(external_ref=body["external_ref"], customer_ref="someone-else")
    for attempt in (body, changed):  # done already, or a different order: both conflicts
        problem = assert_problem(post_order(client, token, attempt), 409)
        assert problem["reason"] == "external_ref_exists"
        assert problem["order_id"] == first["id"]
    assert len(rows(app, Order)) == 1


@pytest.mark.parametrize("new_key", [False, True])
def test_lost_create_response_then_retry_gives_one_payment(
    client, app, token, paynow_emulator, new_key: bool
) -> None:
    """PayNow creates the payment but every answer is lost, so Kwit answers 502; the retry
    finds the order by external_ref and gets the same payment with the same derived key."""
    fault(paynow_emulator, lose_create_response=PAYNOW_RETRIES + 1)
    body = order_body()
    key = str(uuid.uuid4())
    problem = assert_problem(post_order(client, token, body, key), 502)
    assert problem["reason"] == "paynow_unavailable"
    [order] = rows(app, Order)
    assert problem["order_id"] == order.id
    assert rows(app, Payment) == []
    assert rows(app, IdempotencyKey) == []  # a 5xx releases the key
    assert len(emulator_state(paynow_emulator)["payments"]) == 1

    retry = post_order(client, token, body, None if new_key else key)
    assert retry.status_code == 201, retry.get_data(as_text=True)
    assert retry.get_json()["id"] == order.id
    state = emulator_state(paynow_emulator)
    [remote] = state["payments"]
    assert state["counts"]["idempotent_replays"] >= 1
    [payment] = rows(app, Payment)
    assert payment.provider_payment_id == remote["id"]
    assert retry.get_json()["redirect_url"].endswith(remote["id"])
    assert len(rows(app, Order)) == 1


def test_one_lost_response_is_absorbed_by_the_client_retry(
    client, app, token, paynow_emulator
) -> None:
    fault(paynow_emulator, lose_create_response=1)
    assert post_order(client, token, order_body()).status_code == 201
    assert len(emulator_state(paynow_emulator)["payments"]) == 1
    assert len(rows(app, Payment)) == 1


def test_paynow_refusal_removes_the_order(client, app, token, monkeypatch) -> None:
    def refuse(self, **_: Any) -> dict:
        raise PaynowValidationError(
            "PayNow HTTP 400: VALIDATION_ERROR",
            status_code=400,
            errors=[{"errorType": "VALIDATION_ERROR", "message": "buyer.email: zofia@…"}],
        )

    monkeypatch.setattr(PaynowClient, "create_payment", refuse)
    body = order_body()
    problem = assert_problem(post_order(client, token, body), 422)
    assert problem["reason"] == "paynow_refused"
    assert problem["paynow_errors"] == ["VALIDATION_ERROR"]
    assert "zofia" not in json.dumps(problem)  # PayNow's message may echo buyer data
    assert rows(app, Order) == []
    monkeypatch.undo()
    assert post_order(client, token, body).status_code == 201  # the same external_ref again


def test_paynow_not_configured_is_503(client, db_url, tmp_path, make_key) -> None:
    other = create_app(make_settings(db_url, tmp_path, paynow_api_key=None))
    try:
        problem = assert_problem(
            post_order(other.test_client(), make_key("backend"), order_body()), 503
        )
        assert "PayNow" in problem["detail"]
    finally:
        other.extensions["kwit"].close()


def test_only_backend_and_admin_may_create(client, app, make_key) -> None:
    body = order_body(provider="external")
    assert_problem(post_order(client, make_key("accountant"), body), 403)
    assert post_order(client, make_key("admin"), body).status_code == 201
    unauthenticated = client.post("/v1/orders", json=body, headers={"Idempotency-Key": "k"})
    assert_problem(unauthenticated, 401)
