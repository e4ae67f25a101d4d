"""PayNow emulator: signature checks, idempotency, refunds, paywall, notifications, faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from emulators.paynow import create_app, start_in_thread
from emulators.paynow_sign import notification_signature, request_signature
from webhooks.paynow_client import (
    PaynowAuthError,
    PaynowClient,
    PaynowNotFoundError,
    PaynowValidationError,
    idempotency_key_for,
    signature_v3,
)

AK = "97a55694-5478-43b5-b406-fb49ebfdd2b5"
SK = "b305b996-bca5-4404-a0b7-2ccea3d2b64b"
IK = "d243fdb3-c287-484a-bb9c-58536f2794c1"
PUBLIC = "https://paywall.example"
ID_RE = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{3}){3}$")
PAYMENT = {
    "amount": 1000,
    "currency": "PLN",
    "externalId": "order-1",
    "description": "Zamówienie 1",
    "buyer": {"email": "jan@example.pl"},
}


class Receiver:
    """A real HTTP notification sink: records raw bodies and headers, answers ``status``."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.calls.append((dict(request.headers), request.get_data()))
        return Response(status=self.status)(environ, start_response)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.calls]


def independent_hmac(body: bytes) -> str:
    return base64.b64encode(hmac.new(SK.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    sink = Receiver()
    server = make_server("127.0.0.1", 0, sink, threaded=True)
    # A short poll interval keeps shutdown() (and so each test's teardown) fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    sink.url = f"http://127.0.0.1:{server.server_port}/webhooks/paynow"  # type: ignore[attr-defined]
    yield sink
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def app(receiver: Receiver) -> Flask:
    return create_app(
        api_key=AK,
        signature_key=SK,
        notify_url=receiver.url,  # type: ignore[attr-defined]
        public_url=PUBLIC,
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def call(
    client: FlaskClient,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    signature_key: str = SK,
) -> Any:
    """A request signed by Kwit's client signer: the emulator's verifier cross-checks it."""
    text = "" if body is None else json.dumps(body, separators=(",", ":"))
    key = key or f"k-{time.monotonic_ns()}"
    headers = {
        "Api-Key": AK,
        "Idempotency-Key": key,
        "Signature": signature_v3(
            api_key=AK, signature_key=signature_key, idempotency_key=key, body=text
        ),
    }
    return client.open(path, method=method, data=text.encode(), headers=headers)


def create(client: FlaskClient, key: str = "pay-1", **changes: Any) -> Any:
    return call(client, "POST", "/v3/payments", {**PAYMENT, **changes}, key=key)


def faults(client: FlaskClient, **switches: Any) -> None:
    assert client.post("/__emulator__/faults", json=switches).status_code == 200


def state(client: FlaskClient) -> dict[str, Any]:
    return client.get("/__emulator__/state").get_json()


def confirmed_payment(client: FlaskClient, key: str = "paid-1") -> str:
    payment_id = create(client, key=key).get_json()["paymentId"]
    assert client.post(f"/paywall/{payment_id}/pay").status_code == 200
    return payment_id


# --- signing, checked against the PayNow test vectors -------------------------------------


def test_emulator_signer_matches_docs_vectors() -> None:
    headers = {"Api-Key": AK, "Idempotency-Key": IK}
    assert request_signature(SK, headers, {}, "") == "fXwLZRwo0WiGll90PPl5oULX9VKA0gpFA/3+E+NRp5E="
    r2 = (
        '{"amount":45671,"externalId":"234567898654","description":"Test transaction",'
        '"buyer":{"email":"jan.kowalski@melements.pl"}}'
    )
    assert request_signature(SK, headers, {}, r2) == "3TxjvCCw3jporTw7I72gVywa3Hkz9kss+E609y+5ymU="
    params = {"currency": ["PLN"], "amount": ["45671"]}
    assert request_signature(SK, headers, params, "") == (
        "e7X6xmwKvHeYrzn49UtNvb2KeOx5L7Od9MtunSCTpWc="
    )
    literal = '{"description":"Zamówienie /1"}'
    assert request_signature(SK, headers, {}, literal) == (
        "V6dO4EuFzhBWQMkZN8vxjhRXqunrGW5X/itUVFCRLuE="
    )


def test_emulator_notification_signer_matches_vendor_vectors() -> None:
    n1 = (
        b'{\n  "paymentId": "NOLV-8F9-08K-WGD",\n  "status": "CONFIRMED",\n'
        b'  "modifiedAt": "2018-12-12T13:24:52"\n}'
    )
    assert notification_signature("s3ecret-k3y", n1) == (
        "Aq/VmN15rtjVbuy9F7Yw+Ym76H+VZjVSuHGpg4dwitY="
    )
    n3 = (
        b'{"paymentId":"NOLV-8F9-08K-WGD","externalId":"order-123","status":"CONFIRMED",'
        b'"modifiedAt":"2024-05-01T12:00:00"}'
    )
    assert notification_signature(SK, n3) == "Ryxo6Wm9dGrSRlO9mWkp75ni7K/3j070mr43rhKHkc4="


# --- API --------------------------------------------------------------------------------------


def test_signed_create_then_status(client: FlaskClient) -> None:
    answer = create(client)
    assert answer.status_code == 201
    body = answer.get_json()
    assert ID_RE.match(body["paymentId"])
    assert body["status"] == "NEW"
    assert body["redirectUrl"] == f"{PUBLIC}/paywall/{body['paymentId']}"
    status = call(client, "GET", f"/v3/payments/{body['paymentId']}/status")
    assert status.status_code == 200
    assert status.get_json() == {"paymentId": body["paymentId"], "status": "NEW"}


@pytest.mark.parametrize(
    ("headers", "error_type"),
    [
        ({"Api-Key": "wrong"}, "UNAUTHORIZED"),
        ({"Api-Key": None}, "UNAUTHORIZED"),
        ({"Signature": None}, "SIGNATURE_MISSING"),
        ({"Signature": "AAAA"}, "VERIFICATION_FAILED"),
        ({"Idempotency-Key": "another-key"}, "VERIFICATION_FAILED"),
    ],
)
def test_bad_credentials_get_the_401_envelope(
    client: FlaskClient, headers: dict[str, str | None], error_type: str
) -> None:
    text = json.dumps(PAYMENT)
    sent = {
        "Api-Key": AK,
        "Idempotency-Key": IK,
        "Signature": signature_v3(api_key=AK, signature_key=SK, idempotency_key=IK, body=text),
    }
    sent.update(headers)  # type: ignore[arg-type]
    answer = client.post(
        "/v3/payments", data=text, headers={k: v for k, v in sent.items() if v is not None}
    )
    assert answer.status_code == 401
    assert answer.get_json()["statusCode"] == 401
    assert answer.get_json()["errors"][0]["errorType"] == error_type
    assert state(client)["counts"]["payments"] == 0
    assert state(client)["counts"]["auth_failures"] == 1


def test_signature_with_the_wrong_key_or_an_unsigned_query_fails(client: FlaskClient) -> None:
    assert create(client).status_code == 201
    wrong_key = call(client, "POST", "/v3/payments", PAYMENT, signature_key="other")
    assert wrong_key.get_json()["errors"][0]["errorType"] == "VERIFICATION_FAILED"
    key = "q-1"
    headers = {
        "Api-Key": AK,
        "Idempotency-Key": key,
        "Signature": signature_v3(api_key=AK, signature_key=SK, idempotency_key=key),
    }
    unsigned_query = client.get("/v3/payments/paymentmethods?amount=100", headers=headers)
    assert unsigned_query.status_code == 401
    signed = signature_v3(api_key=AK, signature_key=SK, idempotency_key=key, query={"x": "1"})
    answer = client.get(
        "/v3/payments/NOPE-000-000-000/status?x=1", headers={**headers, "Signature": signed}
    )
    assert answer.status_code == 404  # signature fine, payment unknown
    assert answer.get_json()["errors"][0]["errorType"] == "NOT_FOUND"


def test_create_is_idempotent_per_key(client: FlaskClient) -> None:
    first = create(client, key="same").get_json()
    again = create(client, key="same")
    assert again.status_code == 201
    assert again.get_json() == first
    other = create(client, key="other").get_json()
    assert other["paymentId"] != first["paymentId"]
    snapshot = state(client)
    assert snapshot["counts"]["payments"] == 2
    assert snapshot["counts"]["idempotent_replays"] == 1
    conflict = create(client, key="same", amount=2000)
    assert conflict.status_code == 409
    assert conflict.get_json()["errors"][0]["errorType"] == "CONFLICT"


def test_missing_idempotency_key_on_create(client: FlaskClient) -> None:
    text = json.dumps(PAYMENT)
    envelope = json.dumps(
        {"headers": {"Api-Key": AK}, "parameters": {}, "body": text}, separators=(",", ":")
    )
    signature = base64.b64encode(
        hmac.new(SK.encode(), envelope.encode(), hashlib.sha256).digest()
    ).decode()
    answer = client.post("/v3/payments", data=text, headers={"Api-Key": AK, "Signature": signature})
    assert answer.status_code == 400
    assert answer.get_json()["errors"][0]["errorType"] == "IDEMPOTENCY_KEY_MISSING"


@pytest.mark.parametrize(
    ("changes", "error_type"),
    [
        ({"amount": 99}, "PAYMENT_AMOUNT_TOO_SMALL"),
        ({"amount": 100_000_001}, "PAYMENT_AMOUNT_TOO_LARGE"),
        ({"amount": 10.5}, "VALIDATION_ERROR"),
        ({"currency": "JPY"}, "VALIDATION_ERROR"),
        ({"externalId": None}, "VALIDATION_ERROR"),
        ({"externalId": "x" * 101}, "VALIDATION_ERROR"),
        ({"description": "x" * 256}, "VALIDATION_ERROR"),
        ({"buyer": {}}, "VALIDATION_ERROR"),
        ({"buyer": None}, "VALIDATION_ERROR"),
    ],
)
def test_create_validation(client: FlaskClient, changes: dict[str, Any], error_type: str) -> None:
    body = {k: v for k, v in {**PAYMENT, **changes}.items() if v is not None}
    answer = call(client, "POST", "/v3/payments", body)
    assert answer.status_code == 400
    assert answer.get_json() == {
        "statusCode": 400,
        "errors": [{"errorType": error_type, "message": answer.get_json()["errors"][0]["message"]}],
    }
    assert "jan@example.pl" not in answer.get_data(as_text=True)
    assert state(client)["counts"]["payments"] == 0


def test_amount_boundaries_and_string_amounts_are_accepted(client: FlaskClient) -> None:
    assert create(client, key="a", amount=100).status_code == 201
    assert create(client, key="b", amount=100_000_000).status_code == 201
    assert create(client, key="c", amount="45671").status_code == 201
    amounts = sorted(p["amount"] for p in state(client)["payments"])
    assert amounts == [100, 45671, 100_000_000]


def test_refund_rules(client: FlaskClient) -> None:
    unpaid = create(client, key="unpaid").get_json()["paymentId"]
    early = call(client, "POST", f"/v3/payments/{unpaid}/refunds", {"amount": 100}, key="r0")
    assert early.status_code == 400
    assert early.get_json()["errors"][0]["errorType"] == "VALIDATION_ERROR"
    payment_id = confirmed_payment(client)
    refunds = f"/v3/payments/{payment_id}/refunds"
    assert (
        call(client, "POST", refunds, {"amount": 600, "reason": "RMA"}, key="r1").status_code == 201
    )
    too_much = call(client, "POST", refunds, {"amount": 401}, key="r2")
    assert too_much.status_code == 400
    assert too_much.get_json()["errors"][0]["errorType"] == "VALIDATION_ERROR"
    assert call(client, "POST", refunds, {"amount": 0}, key="r3").status_code == 400
    assert (
        call(client, "POST", refunds, {"amount": 1, "reason": "WHY"}, key="r4").status_code == 400
    )
    faults(client, insufficient_balance=True)
    broke = call(client, "POST", refunds, {"amount": 400}, key="r5")
    assert broke.get_json()["errors"][0]["errorType"] == "INSUFFICIENT_BALANCE_FUNDS"
    faults(client, insufficient_balance=False)
    assert call(client, "POST", refunds, {"amount": 400}, key="r6").status_code == 201
    missing = call(client, "POST", "/v3/payments/NOPE-000-000-000/refunds", {"amount": 1})
    assert missing.status_code == 404
    [payment] = [p for p in state(client)["payments"] if p["id"] == payment_id]
    assert [r["amount"] for r in payment["refunds"]] == [600, 400]


def test_refund_status_advances_per_read_and_cancel_only_when_new(client: FlaskClient) -> None:
    payment_id = confirmed_payment(client)
    refunds = f"/v3/payments/{payment_id}/refunds"
    refund_id = call(client, "POST", refunds, {"amount": 1000}, key="r1").get_json()["refundId"]
    assert ID_RE.match(refund_id)
    seen = [call(client, "GET", f"/v3/refunds/{refund_id}/status").get_json()["status"]]
    seen.append(call(client, "GET", f"/v3/refunds/{refund_id}/status").get_json()["status"])
    seen.append(call(client, "GET", f"/v3/refunds/{refund_id}/status").get_json()["status"])
    assert seen == ["PENDING", "SUCCESSFUL", "SUCCESSFUL"]
    late = call(client, "POST", f"/v3/refunds/{refund_id}/cancel")
    assert late.status_code == 409
    # A cancelled refund gives its amount back.
    faults(client, refund_auto_advance=False)
    other = confirmed_payment(client, key="paid-2")
    first = call(client, "POST", f"/v3/payments/{other}/refunds", {"amount": 1000}, key="r2")
    rid = first.get_json()["refundId"]
    assert call(client, "GET", f"/v3/refunds/{rid}/status").get_json()["status"] == "NEW"
    assert call(client, "POST", f"/v3/refunds/{rid}/cancel").status_code == 200
    assert call(client, "GET", f"/v3/refunds/{rid}/status").get_json()["status"] == "CANCELLED"
    again = call(client, "POST", f"/v3/payments/{other}/refunds", {"amount": 1000}, key="r3")
    assert again.status_code == 201
    forced = client.post(
        f"/__emulator__/refunds/{again.get_json()['refundId']}/advance",
        json={"status": "FAILED", "failureReason": "CARD_BALANCE_ERROR"},
    )
    assert forced.get_json()["status"] == "FAILED"
    failed = call(client, "GET", f"/v3/refunds/{again.get_json()['refundId']}/status").get_json()
    assert failed["failureReason"] == "CARD_BALANCE_ERROR"


# --- paywall and notifications ---------------------------------------------------------------


def assert_genuine(receiver: Receiver) -> None:
    """Every delivery is signed over its exact bytes (checked with our own HMAC)."""
    for headers, body in receiver.calls:
        assert headers["Signature"] == independent_hmac(body)
        assert headers["Content-Type"] == "application/json"


def test_paywall_page_has_pay_and_reject(client: FlaskClient) -> None:
    payment_id = create(client).get_json()["paymentId"]
    page = client.get(f"/paywall/{payment_id}").get_data(as_text=True)
    assert f'action="/paywall/{payment_id}/pay"' in page
    assert f'action="/paywall/{payment_id}/reject"' in page
    assert "Zamówienie 1" in page
    assert "10.00 PLN" in page


def test_pay_sends_signed_pending_then_confirmed(client: FlaskClient, receiver: Receiver) -> None:
    payment_id = create(client).get_json()["paymentId"]
    answer = client.post(f"/paywall/{payment_id}/pay")
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "CONFIRMED"
    assert [n["deliveries"] for n in answer.get_json()["notifications"]] == [[200], [200]]
    assert_genuine(receiver)
    bodies = receiver.bodies()
    assert [b["status"] for b in bodies] == ["PENDING", "CONFIRMED"]
    for body in bodies:
        assert set(body) == {"paymentId", "externalId", "status", "modifiedAt"}
        assert body["paymentId"] == payment_id
        assert body["externalId"] == "order-1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", body["modifiedAt"])
    assert bodies[0]["modifiedAt"] < bodies[1]["modifiedAt"]
    assert call(client, "GET", f"/v3/payments/{payment_id}/status").get_json()["status"] == (
        "CONFIRMED"
    )
    assert client.post(f"/paywall/{payment_id}/pay").status_code == 409


def test_reject_sends_rejected(client: FlaskClient, receiver: Receiver) -> None:
    payment_id = create(client).get_json()["paymentId"]
    assert client.post(f"/paywall/{payment_id}/reject").get_json()["status"] == "REJECTED"
    assert [b["status"] for b in receiver.bodies()] == ["PENDING", "REJECTED"]
    assert_genuine(receiver)


def test_browser_pay_returns_to_continue_url(client: FlaskClient) -> None:
    payment_id = create(client, continueUrl="https://shop.example/done?o=1").get_json()["paymentId"]
    answer = client.post(f"/paywall/{payment_id}/pay", data={"via": "paywall"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == (
        f"https://shop.example/done?o=1&paymentId={payment_id}&paymentStatus=CONFIRMED"
    )


def test_modified_at_is_warsaw_wall_time_and_strictly_increasing(receiver: Receiver) -> None:
    frozen = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)  # 12:00 in Warsaw (CEST)
    app = create_app(
        api_key=AK,
        signature_key=SK,
        notify_url=receiver.url,  # type: ignore[attr-defined]
        clock=lambda: frozen,
    )
    client = app.test_client()
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    times = [b["modifiedAt"] for b in receiver.bodies()]
    # Creation took 12:00:00; a frozen clock still yields strictly later stamps.
    assert times == ["2024-05-01T12:00:01", "2024-05-01T12:00:02"]


def test_forced_status_is_notified(client: FlaskClient, receiver: Receiver) -> None:
    payment_id = create(client).get_json()["paymentId"]
    forced = client.post(f"/__emulator__/payments/{payment_id}/status", json={"status": "EXPIRED"})
    assert forced.get_json()["status"] == "EXPIRED"
    assert [b["status"] for b in receiver.bodies()] == ["EXPIRED"]
    assert call(client, "GET", f"/v3/payments/{payment_id}/status").get_json()["status"] == (
        "EXPIRED"
    )


def test_duplicate_notifications(client: FlaskClient, receiver: Receiver) -> None:
    faults(client, duplicate_notifications=2)
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    assert [b["status"] for b in receiver.bodies()] == ["PENDING"] * 3 + ["CONFIRMED"] * 3
    assert_genuine(receiver)
    assert [n["deliveries"] for n in state(client)["notifications"]] == [[200] * 3] * 2


def test_reorder_notifications(client: FlaskClient, receiver: Receiver) -> None:
    faults(client, reorder_notifications=True)
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    bodies = receiver.bodies()
    assert [b["status"] for b in bodies] == ["CONFIRMED", "PENDING"]
    assert bodies[0]["modifiedAt"] > bodies[1]["modifiedAt"]


def test_notify_false_sends_nothing_until_redelivered(
    client: FlaskClient, receiver: Receiver
) -> None:
    faults(client, notify=False)
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    assert receiver.calls == []
    snapshot = state(client)
    assert [n["deliveries"] for n in snapshot["notifications"]] == [[], []]
    assert snapshot["payments"][0]["status"] == "CONFIRMED"
    faults(client, notify=True)
    assert client.post("/__emulator__/notifications/redeliver").get_json() == {"redelivered": 2}
    assert [b["status"] for b in receiver.bodies()] == ["PENDING", "CONFIRMED"]


def test_refused_notifications_are_recorded_and_redelivered(
    client: FlaskClient, receiver: Receiver
) -> None:
    receiver.status = 400
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    assert [n["deliveries"] for n in state(client)["notifications"]] == [[400], [400]]
    receiver.status = 202
    client.post("/__emulator__/notifications/redeliver")
    assert [n["deliveries"] for n in state(client)["notifications"]] == [[400, 202]] * 2
    assert client.post("/__emulator__/notifications/redeliver").get_json() == {"redelivered": 0}


def test_pretty_notifications_are_signed_over_the_raw_bytes(
    client: FlaskClient, receiver: Receiver
) -> None:
    faults(client, pretty_notifications=True)
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    headers, body = receiver.calls[0]
    assert body.startswith(b'{\n    "paymentId": ')
    assert headers["Signature"] == independent_hmac(body)
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert headers["Signature"] != independent_hmac(compact)


def test_async_notifications_arrive_after_the_answer(
    client: FlaskClient, receiver: Receiver
) -> None:
    faults(client, async_notifications=True)
    payment_id = create(client).get_json()["paymentId"]
    client.post(f"/paywall/{payment_id}/pay")
    deadline = time.monotonic() + 5
    while len(receiver.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [b["status"] for b in receiver.bodies()] == ["PENDING", "CONFIRMED"]


# --- fault switches ---------------------------------------------------------------------------


def test_fail_n_answers_503_before_doing_anything(client: FlaskClient) -> None:
    faults(client, fail_n=2)
    for _ in range(2):
        answer = create(client)
        assert answer.status_code == 503
        assert answer.get_json()["errors"][0]["errorType"] == "SYSTEM_TEMPORARILY_UNAVAILABLE"
    assert state(client)["counts"]["payments"] == 0
    assert create(client).status_code == 201
    assert state(client)["counts"]["injected_failures"] == 2


def test_lost_create_response_keeps_the_payment_for_the_retry(client: FlaskClient) -> None:
    faults(client, lose_create_response=1)
    lost = create(client, key="retry-me")
    assert lost.status_code == 500
    assert state(client)["counts"]["payments"] == 1
    retried = create(client, key="retry-me")
    assert retried.status_code == 201
    snapshot = state(client)
    assert [p["id"] for p in snapshot["payments"]] == [retried.get_json()["paymentId"]]
    assert snapshot["counts"]["lost_create_responses"] == 1


def test_fault_switches_validate_and_reset(client: FlaskClient) -> None:
    assert client.post("/__emulator__/faults", json={"nope": 1}).status_code == 400
    assert client.post("/__emulator__/faults", json={"fail_n": True}).status_code == 400
    assert client.post("/__emulator__/faults", json={"fail_n": -1}).status_code == 400
    faults(client, fail_n=3, notify=False)
    assert state(client)["faults"]["fail_n"] == 3
    reset = client.post("/__emulator__/faults", json={"reset": True}).get_json()
    assert reset["fail_n"] == 0
    assert reset["notify"] is True
    create(client)
    assert client.post("/__emulator__/reset").get_json()["counts"]["payments"] == 0


# --- over real HTTP, with Kwit's client -------------------------------------------------------


@pytest.fixture
def live(receiver: Receiver) -> Iterator[tuple[str, requests.Session, PaynowClient]]:
    server, base_url = start_in_thread(
        api_key=AK,
        signature_key=SK,
        notify_url=receiver.url,  # type: ignore[attr-defined]
    )
    session = requests.Session()
    paynow = PaynowClient(
        session, api_key=AK, signature_key=SK, base_url=base_url, backoff_factor=0
    )
    yield base_url, session, paynow
    paynow.close()
    session.close()
    server.shutdown()
    server.server_close()


def test_client_and_emulator_end_to_end(
    live: tuple[str, requests.Session, PaynowClient], receiver: Receiver
) -> None:
    base_url, session, paynow = live
    created = paynow.create_payment(
        amount_minor=12345,
        currency="PLN",
        external_id="order-e2e",
        description="Zamówienie e2e",
        buyer_email="jan@example.pl",
        idempotency_key=idempotency_key_for("payment", "order-e2e"),
    )
    payment_id = created["paymentId"]
    assert created["redirectUrl"] == f"{base_url}/paywall/{payment_id}"
    assert paynow.payment_status(payment_id)["status"] == "NEW"
    assert session.get(created["redirectUrl"], timeout=5).status_code == 200
    assert session.post(f"{base_url}/paywall/{payment_id}/pay", timeout=5).status_code == 200
    assert paynow.payment_status(payment_id)["status"] == "CONFIRMED"
    assert [b["status"] for b in receiver.bodies()] == ["PENDING", "CONFIRMED"]
    assert_genuine(receiver)
    refund = paynow.create_refund(
        payment_id,
        amount_minor=2345,
        reason="REFUND_BEFORE_14",
        idempotency_key=idempotency_key_for("refund", "order-e2e-1"),
    )
    assert refund["status"] == "NEW"
    statuses = [paynow.refund_status(refund["refundId"])["status"] for _ in range(2)]
    assert statuses == ["PENDING", "SUCCESSFUL"]
    session.post(f"{base_url}/__emulator__/faults", json={"refund_auto_advance": False}, timeout=5)
    second = paynow.create_refund(payment_id, amount_minor=100, reason=None, idempotency_key="r-1")
    assert paynow.cancel_refund(second["refundId"]) is None
    assert paynow.refund_status(second["refundId"])["status"] == "CANCELLED"
    with pytest.raises(PaynowValidationError) as too_much:
        paynow.create_refund(payment_id, amount_minor=10001, reason=None, idempotency_key="r-2")
    assert too_much.value.error_type == "VALIDATION_ERROR"
    with pytest.raises(PaynowNotFoundError):
        paynow.payment_status("NOPE-000-000-000")


def test_lost_create_response_and_client_retry_make_one_payment(
    live: tuple[str, requests.Session, PaynowClient],
) -> None:
    base_url, session, paynow = live
    session.post(f"{base_url}/__emulator__/faults", json={"lose_create_response": 1}, timeout=5)
    created = paynow.create_payment(
        amount_minor=5000,
        currency="PLN",
        external_id="order-lost",
        description="d",
        buyer_email="a@b.pl",
        idempotency_key=idempotency_key_for("payment", "order-lost"),
    )
    snapshot = session.get(f"{base_url}/__emulator__/state", timeout=5).json()
    assert [p["id"] for p in snapshot["payments"]] == [created["paymentId"]]
    assert snapshot["counts"]["lost_create_responses"] == 1
    assert snapshot["counts"]["idempotent_replays"] == 1


def test_wrong_signature_key_is_refused_over_http(
    live: tuple[str, requests.Session, PaynowClient],
) -> None:
    base_url, session, _ = live
    impostor = PaynowClient(session, api_key=AK, signature_key="not-the-key", base_url=base_url)
    with pytest.raises(PaynowAuthError) as caught:
        impostor.payment_status("NOPE-000-000-000")
    assert caught.value.status_code == 401
    assert caught.value.error_type == "VERIFICATION_FAILED"
    impostor.close()
