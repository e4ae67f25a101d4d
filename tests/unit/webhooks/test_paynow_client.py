"""PayNow v3 client: signature vectors (docs/protocols/paynow.md), request shape, errors, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator

import pytest
import requests
import responses

from webhooks.paynow_client import (
    PaynowAuthError,
    PaynowClient,
    PaynowConflictError,
    PaynowError,
    PaynowNotFoundError,
    PaynowRateLimitError,
    PaynowTransientError,
    PaynowValidationError,
    idempotency_key_for,
    signature_v3,
)

AK = "97a55694-5478-43b5-b406-fb49ebfdd2b5"
SK = "b305b996-bca5-4404-a0b7-2ccea3d2b64b"
IK = "d243fdb3-c287-484a-bb9c-58536f2794c1"
BASE = "https://api.sandbox.paynow.pl"
PAY_ID = "NOLV-8F9-08K-WGD"
R2_BODY = (
    '{"amount":45671,"externalId":"234567898654","description":"Test transaction",'
    '"buyer":{"email":"jan.kowalski@melements.pl"}}'
)


def sign(**kw: object) -> str:
    return signature_v3(api_key=AK, signature_key=SK, idempotency_key=IK, **kw)  # type: ignore[arg-type]


def raw_hmac(message: str) -> str:
    """Independent HMAC of a hand-written envelope, for the deliberately wrong variants."""
    digest = hmac.new(SK.encode(), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- signature vectors ---------------------------------------------------------------------


def test_r1_empty_request_matches_docs_vector() -> None:
    assert sign() == "fXwLZRwo0WiGll90PPl5oULX9VKA0gpFA/3+E+NRp5E="
    assert sign(query={}) == sign(query=None)


def test_r1_parameters_as_array_is_the_wrong_signature() -> None:
    wrong = raw_hmac(
        f'{{"headers":{{"Api-Key":"{AK}","Idempotency-Key":"{IK}"}},"parameters":[],"body":""}}'
    )
    assert wrong == "xSNeLriZGWGDTPYKdQ3C9+M0qddnyMmRKIQBwumPfro="
    assert sign() != wrong


def test_r2_create_payment_body() -> None:
    assert sign(body=R2_BODY) == "3TxjvCCw3jporTw7I72gVywa3Hkz9kss+E609y+5ymU="


def test_r3_query_values_are_signed_as_arrays_in_key_order() -> None:
    expected = "e7X6xmwKvHeYrzn49UtNvb2KeOx5L7Od9MtunSCTpWc="
    assert sign(query={"currency": "PLN", "amount": "45671"}) == expected
    assert sign(query={"amount": ["45671"], "currency": ("PLN",)}) == expected
    alt = raw_hmac(
        f'{{"headers":{{"Api-Key":"{AK}","Idempotency-Key":"{IK}"}},'
        '"parameters":{"amount":"45671","currency":"PLN"},"body":""}'
    )
    assert alt == "nZHPUjXF0EiLtZfOtcMg2AltccnfwTyG3dYNzwLPCAc="
    assert expected != alt


def test_r4_refund_body() -> None:
    assert sign(body='{"amount":100}') == "lkrTGWtagqaqpNVbOtm/4VvkYw6Do0cbzVYz1XnSSLA="


def test_u1_ascii_escaped_body() -> None:
    body = json.dumps({"description": "Zamówienie /1"}, separators=(",", ":"))
    assert body == '{"description":"Zam\\u00f3wienie /1"}'
    assert sign(body=body) == "/NM1OIinDuVPplCo2COu5jvLUHtL1gxSgXoLg2Z7ALc="


def test_u2_literal_utf8_body_is_signed_like_json_stringify() -> None:
    assert sign(body='{"description":"Zamówienie /1"}') == (
        "V6dO4EuFzhBWQMkZN8vxjhRXqunrGW5X/itUVFCRLuE="
    )


def test_u3_python_default_envelope_escaping_differs() -> None:
    body = '{"description":"Zamówienie /1"}'
    envelope = {
        "headers": {"Api-Key": AK, "Idempotency-Key": IK},
        "parameters": {},
        "body": body,
    }
    u3 = raw_hmac(json.dumps(envelope, separators=(",", ":")))  # ensure_ascii=True
    assert u3 == "Oa1cWE4PY/DX5XkoPLSRNAaNi2qhF7Mm7vO1VfChMG0="
    assert sign(body=body) != u3


# --- idempotency keys -----------------------------------------------------------------------


def test_idempotency_key_is_stable_and_distinct_per_object() -> None:
    key = idempotency_key_for("payment", "01J9ZB8Q6W3N8X2K5T7V9Y1C3E")
    assert key == "kwit-payment-01J9ZB8Q6W3N8X2K5T7V9Y1C3E"
    assert key == idempotency_key_for("payment", "01J9ZB8Q6W3N8X2K5T7V9Y1C3E")
    assert key != idempotency_key_for("refund", "01J9ZB8Q6W3N8X2K5T7V9Y1C3E")


@pytest.mark.parametrize("object_id", ["x" * 60, "zamówienie 1", "a/b?c"])
def test_long_or_unsafe_ids_are_hashed_to_45_ascii_chars(object_id: str) -> None:
    key = idempotency_key_for("payment", object_id)
    assert len(key) <= 45
    assert key.isascii()
    assert key.startswith("kwit-payment-h")
    assert key == idempotency_key_for("payment", object_id)
    assert key != idempotency_key_for("payment", object_id + "1")


# --- requests on the wire -------------------------------------------------------------------


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def client(session: requests.Session) -> Iterator[PaynowClient]:
    c = PaynowClient(session, api_key=AK, signature_key=SK, base_url=BASE)
    yield c
    c.close()


def assert_signed(request: requests.PreparedRequest, key: str | None = None) -> None:
    """The Signature header covers exactly the bytes that went out."""
    body = request.body or b""
    assert isinstance(body, bytes)
    sent_key = request.headers["Idempotency-Key"]
    if key is not None:
        assert sent_key == key
    assert len(sent_key) <= 45
    expected = signature_v3(
        api_key=AK, signature_key=SK, idempotency_key=sent_key, body=body.decode("ascii")
    )
    assert request.headers["Signature"] == expected
    assert request.headers["Api-Key"] == AK
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == "kwit"


@responses.activate
def test_create_payment_sends_exactly_the_signed_ascii_bytes(client: PaynowClient) -> None:
    answer = {"redirectUrl": "https://paywall/x", "paymentId": PAY_ID, "status": "NEW"}
    responses.post(f"{BASE}/v3/payments", json=answer, status=201)
    result = client.create_payment(
        amount_minor=45671,
        currency="PLN",
        external_id="order-1",
        description="Zamówienie /1",
        buyer_email="jan@example.pl",
        continue_url="https://shop.example/back",
        idempotency_key="kwit-payment-order-1",
    )
    assert result == answer
    sent = responses.calls[0].request
    assert sent.body == (
        b'{"amount":45671,"currency":"PLN","externalId":"order-1",'
        b'"description":"Zam\\u00f3wienie /1","buyer":{"email":"jan@example.pl"},'
        b'"continueUrl":"https://shop.example/back"}'
    )
    assert sent.headers["Content-Type"] == "application/json"
    assert_signed(sent, "kwit-payment-order-1")


@responses.activate
def test_create_payment_omits_continue_url_when_none(client: PaynowClient) -> None:
    responses.post(f"{BASE}/v3/payments", json={"paymentId": PAY_ID}, status=201)
    client.create_payment(
        amount_minor=100,
        currency="PLN",
        external_id="o",
        description="d",
        buyer_email="a@b.pl",
        idempotency_key="k",
    )
    assert "continueUrl" not in json.loads(responses.calls[0].request.body)


@responses.activate
def test_status_reads_sign_an_empty_body_with_a_fresh_key_each_time(client: PaynowClient) -> None:
    responses.get(
        f"{BASE}/v3/payments/{PAY_ID}/status", json={"paymentId": PAY_ID, "status": "NEW"}
    )
    assert client.payment_status(PAY_ID) == {"paymentId": PAY_ID, "status": "NEW"}
    assert client.payment_status(PAY_ID)["status"] == "NEW"
    first, second = (c.request for c in responses.calls)
    assert first.body is None
    assert "Content-Type" not in first.headers
    assert_signed(first)
    assert_signed(second)
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]


@responses.activate
def test_refund_calls(client: PaynowClient) -> None:
    responses.post(
        f"{BASE}/v3/payments/{PAY_ID}/refunds", json={"refundId": "R1", "status": "NEW"}, status=201
    )
    responses.get(f"{BASE}/v3/refunds/R1/status", json={"refundId": "R1", "status": "PENDING"})
    responses.post(f"{BASE}/v3/refunds/R1/cancel", body="", status=200)
    created = client.create_refund(PAY_ID, amount_minor=100, reason="RMA", idempotency_key="rk")
    assert created == {"refundId": "R1", "status": "NEW"}
    assert client.refund_status("R1")["status"] == "PENDING"
    assert client.cancel_refund("R1") is None
    refund, status, cancel = (c.request for c in responses.calls)
    assert refund.body == b'{"amount":100,"reason":"RMA"}'
    assert_signed(refund, "rk")
    assert_signed(status)
    assert cancel.method == "POST"
    assert not cancel.body
    assert_signed(cancel)


@responses.activate
def test_refund_without_reason_goes_out_signed_as_vector_r4(client: PaynowClient) -> None:
    responses.post(f"{BASE}/v3/payments/{PAY_ID}/refunds", json={"refundId": "R"}, status=201)
    client.create_refund(PAY_ID, amount_minor=100, reason=None, idempotency_key=IK)
    sent = responses.calls[0].request
    assert sent.body == b'{"amount":100}'
    assert sent.headers["Signature"] == "lkrTGWtagqaqpNVbOtm/4VvkYw6Do0cbzVYz1XnSSLA="


@responses.activate
def test_timeouts_are_passed_on_every_call(session: requests.Session) -> None:
    client = PaynowClient(session, api_key=AK, signature_key=SK, base_url=BASE, timeout=(1.5, 7.0))
    responses.get(f"{BASE}/v3/refunds/R/status", json={"status": "NEW"})
    responses.post(f"{BASE}/v3/refunds/R/cancel", status=200)
    client.refund_status("R")
    client.cancel_refund("R")
    assert [c.request.req_kwargs["timeout"] for c in responses.calls] == [(1.5, 7.0)] * 2
    client.close()


@responses.activate
def test_default_timeouts(client: PaynowClient) -> None:
    responses.get(f"{BASE}/v3/refunds/R/status", json={"status": "NEW"})
    client.refund_status("R")
    assert responses.calls[0].request.req_kwargs["timeout"] == (5.0, 30.0)


def test_overlong_idempotency_key_is_refused_before_any_call(client: PaynowClient) -> None:
    with responses.RequestsMock() as mock, pytest.raises(ValueError, match="45"):
        client.create_refund(PAY_ID, amount_minor=1, reason=None, idempotency_key="k" * 46)
    assert len(mock.calls) == 0


# --- errors -------------------------------------------------------------------------------


def envelope(status: int, *types: str) -> dict[str, object]:
    errors = [{"errorType": t, "message": f"{t}: buyer.email jan@example.pl"} for t in types]
    return {"statusCode": status, "errors": errors}


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "VALIDATION_ERROR", PaynowValidationError),
        (400, "PAYMENT_AMOUNT_TOO_SMALL", PaynowValidationError),
        (400, "PAYMENT_AMOUNT_TOO_LARGE", PaynowValidationError),
        (400, "PAYMENT_METHOD_NOT_AVAILABLE", PaynowValidationError),
        (400, "INSUFFICIENT_BALANCE_FUNDS", PaynowValidationError),
        (400, "IDEMPOTENCY_KEY_MISSING", PaynowValidationError),
        (401, "UNAUTHORIZED", PaynowAuthError),
        (401, "VERIFICATION_FAILED", PaynowAuthError),
        (400, "SIGNATURE_MISSING", PaynowAuthError),
        (403, "FORBIDDEN", PaynowAuthError),
        (404, "NOT_FOUND", PaynowNotFoundError),
        (409, "CONFLICT", PaynowConflictError),
        (429, "RATE_LIMIT_REACHED", PaynowRateLimitError),
        (400, "RATE_LIMIT_REACHED", PaynowRateLimitError),
        (418, "SOMETHING_NEW", PaynowError),
    ],
)
@responses.activate
def test_error_envelope_maps_to_typed_errors(
    client: PaynowClient, status: int, error_type: str, cls: type[PaynowError]
) -> None:
    responses.get(
        f"{BASE}/v3/payments/{PAY_ID}/status", json=envelope(status, error_type), status=status
    )
    with pytest.raises(PaynowError) as caught:
        client.payment_status(PAY_ID)
    exc = caught.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.error_type == error_type
    assert exc.errors == envelope(status, error_type)["errors"]
    # Messages may echo buyer data; str(exc) carries only the status and the types.
    assert "jan@example.pl" not in str(exc)
    assert error_type in str(exc)
    assert len(responses.calls) == 1  # 4xx is never retried


@pytest.mark.parametrize("status", [404, 409, 429, 401, 400])
@responses.activate
def test_status_alone_classifies_when_there_is_no_envelope(
    client: PaynowClient, status: int
) -> None:
    expected = {
        400: PaynowValidationError,
        401: PaynowAuthError,
        404: PaynowNotFoundError,
        409: PaynowConflictError,
        429: PaynowRateLimitError,
    }[status]
    responses.get(f"{BASE}/v3/payments/{PAY_ID}/status", body="<html>nope</html>", status=status)
    with pytest.raises(expected) as caught:
        client.payment_status(PAY_ID)
    assert caught.value.errors == []
    assert caught.value.error_type is None


@responses.activate
def test_rate_limit_carries_retry_after(client: PaynowClient) -> None:
    responses.get(
        f"{BASE}/v3/payments/{PAY_ID}/status",
        json=envelope(429, "RATE_LIMIT_REACHED"),
        status=429,
        headers={"Retry-After": "12"},
    )
    with pytest.raises(PaynowRateLimitError) as caught:
        client.payment_status(PAY_ID)
    assert caught.value.retry_after == 12.0
    assert len(responses.calls) == 1


@responses.activate
def test_successful_non_json_answer_is_an_error(client: PaynowClient) -> None:
    responses.get(f"{BASE}/v3/payments/{PAY_ID}/status", body="<html/>", status=200)
    with pytest.raises(PaynowError, match="non-JSON") as caught:
        client.payment_status(PAY_ID)
    assert caught.value.status_code == 200


# --- retries ------------------------------------------------------------------------------


def create(client: PaynowClient) -> dict[str, object]:
    return client.create_payment(
        amount_minor=45671,
        currency="PLN",
        external_id="order-1",
        description="d",
        buyer_email="a@b.pl",
        idempotency_key=idempotency_key_for("payment", "order-1"),
    )


@responses.activate
def test_create_payment_retries_503_with_the_same_key_and_signature(client: PaynowClient) -> None:
    url = f"{BASE}/v3/payments"
    responses.post(url, json=envelope(503, "SYSTEM_TEMPORARILY_UNAVAILABLE"), status=503)
    responses.post(url, json={"paymentId": PAY_ID, "status": "NEW"}, status=201)
    assert create(client)["paymentId"] == PAY_ID
    first, second = (c.request for c in responses.calls)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["Idempotency-Key"] == "kwit-payment-order-1"
    assert first.headers["Signature"] == second.headers["Signature"]
    assert first.body == second.body
    assert_signed(second)


@responses.activate
def test_no_retry_on_400(client: PaynowClient) -> None:
    responses.post(f"{BASE}/v3/payments", json=envelope(400, "VALIDATION_ERROR"), status=400)
    with pytest.raises(PaynowValidationError):
        create(client)
    assert len(responses.calls) == 1


@responses.activate
def test_retries_are_bounded_then_transient_error(session: requests.Session) -> None:
    client = PaynowClient(session, api_key=AK, signature_key=SK, base_url=BASE, retries=2)
    responses.post(
        f"{BASE}/v3/payments", json=envelope(503, "SYSTEM_TEMPORARILY_UNAVAILABLE"), status=503
    )
    with pytest.raises(PaynowTransientError) as caught:
        create(client)
    assert caught.value.status_code == 503
    assert caught.value.error_type == "SYSTEM_TEMPORARILY_UNAVAILABLE"
    assert len(responses.calls) == 3
    client.close()


@responses.activate
def test_status_reads_are_retried_on_502(client: PaynowClient) -> None:
    url = f"{BASE}/v3/payments/{PAY_ID}/status"
    responses.get(url, body="bad gateway", status=502)
    responses.get(url, json={"paymentId": PAY_ID, "status": "CONFIRMED"})
    assert client.payment_status(PAY_ID)["status"] == "CONFIRMED"
    assert len(responses.calls) == 2


@responses.activate
def test_cancel_refund_is_not_retried(client: PaynowClient) -> None:
    responses.post(f"{BASE}/v3/refunds/R/cancel", body="", status=503)
    with pytest.raises(PaynowTransientError):
        client.cancel_refund("R")
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("down"), requests.ReadTimeout("slow")]
)
@responses.activate
def test_connection_errors_and_timeouts_are_transient(
    client: PaynowClient, failure: Exception
) -> None:
    responses.get(f"{BASE}/v3/refunds/R/status", body=failure)
    with pytest.raises(PaynowTransientError) as caught:
        client.refund_status("R")
    assert caught.value.status_code is None
    assert caught.value.__cause__ is failure


def test_refused_connection_is_retried_then_transient(session: requests.Session) -> None:
    with socket.socket() as sock:  # grab a free port, then close it so nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = PaynowClient(
        session,
        api_key=AK,
        signature_key=SK,
        base_url=f"http://127.0.0.1:{port}",
        retries=1,
        backoff_factor=0,
    )
    with pytest.raises(PaynowTransientError, match="ConnectionError"):
        create(client)
    client.close()
