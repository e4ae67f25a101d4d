"""The Idempotency-Key mechanism on POST /v1/orders and refunds (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from models import IdempotencyKey, IdempotencyState, Order, Payment, utcnow
from service.auth import authenticate
from service.idempotency import IN_FLIGHT_LEASE, TTL, fingerprint, purge_expired
from service.providers import PAYNOW_RETRIES
from tests.support import (
    assert_problem,
    auth,
)

BODY: dict[str, Any] = {
    "external_ref": "shop-1001",
    "customer_ref": "cust-7",
    "currency": "PLN",
    "provider": "external",
    "items": [{"name": "Plan Pro", "quantity": 1, "unit_gross_minor": 12300, "vat_rate": "23"}],
    "buyer": {
        "name": "Jan Próbny",
        "email": "jan.probny@example.pl",
        "address": {"line1": "ul. Długa 5", "postal_code": "00-238", "city": "Warszawa"},
    },
}


def body(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(BODY) | changes


def raw(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def token(make_key) -> str:
    return make_key("backend")


def post(client, token: str, data: bytes, key: str | None, path: str = "/v1/orders"):
    headers = auth(token) | {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(path, data=data, headers=headers)


def count(app, model) -> int:
    with app.extensions["kwit"].sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def keys(app) -> list[IdempotencyKey]:
    with app.extensions["kwit"].sessions() as session:
        return list(session.scalars(sa.select(IdempotencyKey)))


def key_id(app, token: str) -> str:
    with app.extensions["kwit"].sessions() as session:
        return authenticate(session, f"Bearer {token}").key_id


def test_missing_key_is_400_and_nothing_happens(client, app, token) -> None:
    problem = assert_problem(post(client, token, raw(body()), None), 400)
    assert "Idempotency-Key" in problem["detail"]
    assert count(app, Order) == 0
    assert keys(app) == []


@pytest.mark.parametrize("key", ["", '""', "k" * 256, '"unterminated', "two words"])
def test_malformed_key_is_400(client, app, token, key: str) -> None:
    assert assert_problem(post(client, token, raw(body()), key), 400)["reason"] == (
        "idempotency_key_invalid"
    )
    assert count(app, Order) == 0


def test_same_key_same_body_replays_the_first_answer(client, app, token) -> None:
    data = raw(body())
    first = post(client, token, data, '"order-1001"')
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    for key in ('"order-1001"', "order-1001"):  # structured-field string or bare: the same key
        again = post(client, token, data, key)
        assert again.status_code == 201
        assert again.get_data() == first.get_data()  # byte for byte
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content_type == "application/json"
    assert count(app, Order) == 1
    [row] = keys(app)
    assert row.state is IdempotencyState.DONE
    assert row.response_status == 201
    assert row.fingerprint == fingerprint("POST", "/v1/orders", data)
    assert row.expires_at - row.created_at == TTL
    assert "Próbny" not in row.response_body  # the stored answer carries no buyer data


def test_same_key_different_body_is_422(client, app, token) -> None:
    assert post(client, token, raw(body()), "k1").status_code == 201
    changed = post(client, token, raw(body(customer_ref="cust-8")), "k1")
    assert assert_problem(changed, 422)["reason"] == "idempotency_key_reused"
    # The fingerprint is over the raw bytes: the same JSON spelt differently is another body.
    spaced = json.dumps(body(), indent=2).encode()
    assert assert_problem(post(client, token, spaced, "k1"), 422)["reason"] == (
        "idempotency_key_reused"
    )
    # …and over method and path: the same key on another endpoint is reuse too.
    order_id = client.get("/v1/orders?external_ref=shop-1001", headers=auth(token)).get_json()["id"]
    refund = raw({"amount_minor": 100, "reason": "OTHER"})
    assert_problem(post(client, token, refund, "k1", f"/v1/orders/{order_id}/refunds"), 422)
    assert count(app, Order) == 1


def test_keys_are_scoped_to_the_api_key(client, app, token, make_key) -> None:
    other = make_key("backend", "other-backend")
    assert post(client, token, raw(body()), "shared").status_code == 201
    # Another API key with the same key and another order: independent, not a 422.
    second = post(client, other, raw(body(external_ref="shop-2002")), "shared")
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    # Another API key with the same key *and* body: not a replay of the first key's answer.
    third = post(client, other, raw(body()), "shared-too")
    assert assert_problem(third, 409)["reason"] == "external_ref_exists"
    assert count(app, Order) == 2
    assert {row.api_key_id for row in keys(app)} == {key_id(app, token), key_id(app, other)}


def _insert_key(app, token: str, key: str, data: bytes, **values: Any) -> None:
    now = utcnow()
    row = {
        "api_key_id": key_id(app, token),
        "key": key,
        "fingerprint": fingerprint("POST", "/v1/orders", data),
        "state": IdempotencyState.IN_FLIGHT,
        "created_at": now,
        "expires_at": now + TTL,
    } | values
    with app.extensions["kwit"].sessions.begin() as session:
        session.add(IdempotencyKey(**row))


def test_key_in_flight_is_409(client, app, token) -> None:
    data = raw(body())
    _insert_key(app, token, "busy", data)
    problem = assert_problem(post(client, token, data, "busy"), 409)
    assert problem["reason"] == "idempotency_key_in_flight"
    assert count(app, Order) == 0
    assert len(keys(app)) == 1  # the first request's row is left alone


def test_key_abandoned_in_flight_is_taken_over(client, app, token) -> None:
    data = raw(body())
    _insert_key(app, token, "crashed", data, created_at=utcnow() - IN_FLIGHT_LEASE - timedelta(1))
    assert post(client, token, data, "crashed").status_code == 201
    [row] = keys(app)
    assert row.state is IdempotencyState.DONE


def test_expired_key_is_replaced(client, app, token) -> None:
    old = utcnow() - TTL - timedelta(hours=1)
    _insert_key(
        app,
        token,
        "yesterday",
        b"another body",
        state=IdempotencyState.DONE,
        response_status=201,
        response_body="{}",
        created_at=old,
        expires_at=old + TTL,
    )
    data = raw(body())
    response = post(client, token, data, "yesterday")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    [row] = keys(app)
    assert row.fingerprint == fingerprint("POST", "/v1/orders", data)
    assert row.expires_at > utcnow()


def test_client_error_releases_the_key_for_a_corrected_retry(client, app, token) -> None:
    invalid = body()
    invalid["items"][0]["vat_rate"] = "22"
    assert_problem(post(client, token, raw(invalid), "fix-me"), 422)
    assert keys(app) == []
    assert post(client, token, raw(body()), "fix-me").status_code == 201


def test_server_error_releases_the_key_and_the_retry_resumes(
    client, app, token, paynow_emulator
) -> None:
    requests.post(
        f"{paynow_emulator}/__emulator__/faults", json={"fail_n": PAYNOW_RETRIES + 1}, timeout=5
    ).raise_for_status()
    data = raw(body(provider="paynow"))
    assert_problem(post(client, token, data, "flaky"), 502)
    assert keys(app) == []
    assert count(app, Order) == 1  # kept, to be resumed
    retried = post(client, token, data, "flaky")
    assert retried.status_code == 201
    assert retried.get_json()["redirect_url"]
    assert (count(app, Order), count(app, Payment)) == (1, 1)
    replay = post(client, token, data, "flaky")
    assert replay.get_data() == retried.get_data()


def test_unauthenticated_requests_store_nothing(client, app) -> None:
    response = client.post("/v1/orders", json=body(), headers={"Idempotency-Key": "x"})
    assert_problem(response, 401)
    assert keys(app) == []


def test_purge_expired(app, token) -> None:
    old = utcnow() - TTL - timedelta(minutes=1)
    _insert_key(app, token, "old", b"", created_at=old, expires_at=old + TTL)
    _insert_key(app, token, "new", b"")
    with app.extensions["kwit"].sessions.begin() as session:
        assert purge_expired(session, now=utcnow()) == 1
    assert [row.key for row in keys(app)] == ["new"]
