"""One Idempotency-Key sent 20 times at once to gunicorn on PostgreSQL: exactly one order."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from models import IdempotencyKey, IdempotencyState, Order, Payment, Role
from models.session import make_engine, make_session_factory
from service.auth import create_key
from tests.e2e.procs import kwit_env, kwit_web
from tests.support import PAYNOW_API_KEY, PAYNOW_SIGNATURE_KEY, TEST_FERNET_KEY

pytestmark = pytest.mark.slow
REQUESTS = 20


@pytest.fixture
def server(pg_db: str, paynow_emulator: str):
    env = kwit_env(
        KWIT_DATABASE_URL=pg_db,
        KWIT_ENCRYPTION_KEYS=TEST_FERNET_KEY,
        KWIT_PAYNOW_API_KEY=PAYNOW_API_KEY,
        KWIT_PAYNOW_SIGNATURE_KEY=PAYNOW_SIGNATURE_KEY,
        KWIT_PAYNOW_BASE_URL=paynow_emulator,
        KWIT_IFIRMA_BASE_URL="http://127.0.0.1:9/iapi",
    )
    with kwit_web(env, workers=2, threads=16) as base:
        yield base


def new_token(url: str, name: str) -> str:
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            return create_key(session, name=name, role=Role.BACKEND).token
    finally:
        engine.dispose()


def order_body(provider: str) -> bytes:
    return json.dumps(
        {
            "external_ref": f"storm-{uuid.uuid4().hex[:10]}",
            "customer_ref": "cust-storm",
            "currency": "PLN",
            "provider": provider,
            "items": [{"name": "Plan", "quantity": 3, "unit_gross_minor": 4100, "vat_rate": "23"}],
            "buyer": {
                "name": "Burza Sp. z o.o.",
                "nip": "5260250995",
                "email": "burza@example.pl",
                "address": {"line1": "ul. Wietrzna 1", "postal_code": "50-001", "city": "Wrocław"},
            },
        }
    ).encode()


def storm(url: str, sends: list[tuple[str, str, bytes]]) -> list[requests.Response]:
    """Send every (token, key, body) at the same moment."""
    barrier = threading.Barrier(len(sends))

    def send(item: tuple[str, str, bytes]) -> requests.Response:
        token, key, body = item
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
        }
        barrier.wait()
        return requests.post(f"{url}/v1/orders", data=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(len(sends)) as pool:
        return list(pool.map(send, sends))


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return {
                "orders": session.scalar(sa.select(sa.func.count()).select_from(Order)),
                "payments": session.scalar(sa.select(sa.func.count()).select_from(Payment)),
                "keys_done": session.scalar(
                    sa.select(sa.func.count())
                    .select_from(IdempotencyKey)
                    .where(IdempotencyKey.state == IdempotencyState.DONE)
                ),
            }
    finally:
        engine.dispose()


def check_one_winner(responses: list[requests.Response]) -> requests.Response:
    """Exactly one original 201; every other answer is a 409 problem or its exact replay."""
    originals = [
        r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    assert len(originals) == 1, [(r.status_code, r.text[:200]) for r in responses]
    [winner] = originals
    for response in responses:
        if response is winner:
            continue
        if response.status_code == 409:
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["reason"] == "idempotency_key_in_flight"
        else:
            assert response.status_code == 201, response.text[:300]
            assert response.headers["Idempotent-Replayed"] == "true"
            assert response.content == winner.content
    return winner


@pytest.mark.parametrize("provider", ["external", "paynow"])
def test_twenty_requests_one_key_one_order(
    server: str, pg_db: str, paynow_emulator: str, provider
) -> None:
    token = new_token(pg_db, "storm")
    body = order_body(provider)
    responses = storm(server, [(token, "storm-key", body)] * REQUESTS)
    winner = check_one_winner(responses)
    expected_payments = 1 if provider == "paynow" else 0
    assert counts(pg_db) == {"orders": 1, "payments": expected_payments, "keys_done": 1}
    state = requests.get(f"{paynow_emulator}/__emulator__/state", timeout=5).json()
    assert len(state["payments"]) == expected_payments
    if provider == "paynow":
        assert winner.json()["redirect_url"]
    # After the storm, the same request is a replay, byte for byte.
    [late] = storm(server, [(token, "storm-key", body)])
    assert late.headers["Idempotent-Replayed"] == "true"
    assert late.content == winner.content


def test_the_same_key_under_two_api_keys_is_two_keys(server: str, pg_db: str) -> None:
    first, second = new_token(pg_db, "shop-a"), new_token(pg_db, "shop-b")
    body_a, body_b = order_body("external"), order_body("external")
    sends = [(first, "same", body_a), (second, "same", body_b)] * (REQUESTS // 2)
    responses = storm(server, sends)
    check_one_winner(responses[0::2])
    check_one_winner(responses[1::2])
    assert counts(pg_db) == {"orders": 2, "payments": 0, "keys_done": 2}
