"""webhooks/paynow.py: notification signatures against docs/protocols/paynow.md's vectors, normalise."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from helpers import paynow_signature
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from webhooks import paynow
from webhooks.errors import PayloadError, SignatureError
from webhooks.events import EventKind, Provider

SK = "b305b996-bca5-4404-a0b7-2ccea3d2b64b"
N1_KEY = "s3ecret-k3y"
N1_BODY = (
    b'{\n  "paymentId": "NOLV-8F9-08K-WGD",\n  "status": "CONFIRMED",\n'
    b'  "modifiedAt": "2018-12-12T13:24:52"\n}'
)
N1_SIG = "Aq/VmN15rtjVbuy9F7Yw+Ym76H+VZjVSuHGpg4dwitY="
N1B_BODY = (
    b'{"paymentId":"NOLV-8F9-08K-WGD","status":"CONFIRMED","modifiedAt":"2018-12-12T13:24:52"}'
)
N1B_SIG = "UZgTT6iSv174R/OyQ2DWRCE9UCmvdXDS8rbQQcjk+AA="
N2_BODY = (
    b'{\n    "paymentId": "NOLV-8F9-08K-WGD",\n'
    b'    "externalId": "9fea23c7-cd5c-4884-9842-6f8592be65df",\n'
    b'    "status": "CONFIRMED",\n    "modifiedAt": "2018-12-12T13:24:52"\n}'
)
N2_SIG = "F69sbjUxBX4eFjfUal/Y9XGREbfaRjh/zdq9j4MWeHM="
N3_BODY = (
    b'{"paymentId":"NOLV-8F9-08K-WGD","externalId":"order-123","status":"CONFIRMED",'
    b'"modifiedAt":"2024-05-01T12:00:00"}'
)
N3_SIG = "Ryxo6Wm9dGrSRlO9mWkp75ni7K/3j070mr43rhKHkc4="
S1_KEY = "a621a1fb-b4d8-48ba-a6a3-2a28ed61f605"
S1_BODY = b'{"key1":"value1","key2":"value2"}'
S1_SIG = "rFAkhfbUFRn4bTR82qb742Mwy34g/CSi8frEHciZhCU="
R2_BODY = (
    b'{"amount":45671,"externalId":"234567898654","description":"Test transaction",'
    b'"buyer":{"email":"jan.kowalski@melements.pl"}}'
)
L1_SIG = "CFpkQ0fyGUDNunzMK5uVXG60RvLhV7eCoLZYj8Hsi8c="

VECTORS = [
    pytest.param(N1_BODY, N1_KEY, N1_SIG, id="N1"),
    pytest.param(N1B_BODY, N1_KEY, N1B_SIG, id="N1b"),
    pytest.param(N2_BODY, SK, N2_SIG, id="N2"),
    pytest.param(N3_BODY, SK, N3_SIG, id="N3"),
    pytest.param(S1_BODY, S1_KEY, S1_SIG, id="S1"),
    pytest.param(R2_BODY, SK, L1_SIG, id="L1"),
]


def signature_reason(payload: bytes, signature: str | None, keys: list[str] | None = None) -> str:
    with pytest.raises(SignatureError) as caught:
        paynow.verify(payload, signature, keys or [SK])
    return caught.value.reason


# --- vectors -----------------------------------------------------------------------------------


def test_n1_body_is_the_exact_101_byte_fixture() -> None:
    assert len(N1_BODY) == 101


@pytest.mark.parametrize(("body", "key", "signature"), VECTORS)
def test_sign_reproduces_the_vectors(body: bytes, key: str, signature: str) -> None:
    assert paynow.sign(body, key) == signature


@pytest.mark.parametrize(("body", "key", "signature"), VECTORS)
def test_verify_accepts_the_vectors(body: bytes, key: str, signature: str) -> None:
    assert paynow.verify(body, signature, [key]) == json.loads(body)


def test_reserialised_body_does_not_verify_with_the_original_signature() -> None:
    assert json.loads(N1B_BODY) == json.loads(N1_BODY)  # same data, different bytes
    assert signature_reason(N1B_BODY, N1_SIG, [N1_KEY]) == "mismatch"
    assert signature_reason(N1_BODY, N1B_SIG, [N1_KEY]) == "mismatch"


# --- whitespace, rotation ----------------------------------------------------------------------


@pytest.mark.parametrize("padding", [(b"", b"\n"), (b"\r\n", b""), (b" \t", b"\r\n\n")])
def test_body_with_surrounding_whitespace_verifies_with_the_trimmed_signature(
    padding: tuple[bytes, bytes],
) -> None:
    before, after = padding
    assert paynow.verify(before + N3_BODY + after, N3_SIG, [SK])["externalId"] == "order-123"


def test_signature_over_the_untrimmed_body_verifies_too() -> None:
    body = N3_BODY + b"\n"
    assert paynow.verify(body, paynow_signature(body, SK), [SK])["status"] == "CONFIRMED"


def test_whitespace_inside_the_body_is_not_forgiven() -> None:
    assert signature_reason(N3_BODY.replace(b",", b", "), N3_SIG) == "mismatch"


def test_any_configured_key_may_match() -> None:
    assert paynow.verify(N2_BODY, N2_SIG, ["old-key", SK])["status"] == "CONFIRMED"


# --- one negative test per reason --------------------------------------------------------------


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_missing_signature(signature: str | None) -> None:
    assert signature_reason(N3_BODY, signature) == "no_signature"


@pytest.mark.parametrize(
    "signature",
    [
        "not base64!",
        N3_SIG.rstrip("="),  # padding removed
        N3_SIG.replace("/", "_"),  # URL-safe alphabet
        "Ryxo6Wm9dGrSRlO9mWkp75ni7K/3j070mr43rhKHkc4ą",
        base64.b64encode(b"sixteen byte sig").decode(),  # valid base64, not a SHA-256 digest
    ],
)
def test_malformed_signature(signature: str) -> None:
    assert signature_reason(N3_BODY, signature) == "malformed_header"


def test_wrong_key_is_a_mismatch() -> None:
    assert signature_reason(N3_BODY, N3_SIG, ["another-key"]) == "mismatch"


def test_tampered_body_is_a_mismatch() -> None:
    assert signature_reason(N3_BODY.replace(b"order-123", b"order-124"), N3_SIG) == "mismatch"


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    assert signature_reason(b"not json", "garbage?") == "malformed_header"
    assert signature_reason(b"not json", N3_SIG) == "mismatch"


@pytest.mark.parametrize("body", [b'{"paymentId":', b'["CONFIRMED"]', b"\xff\xfe{}", b""])
def test_unreadable_body_with_valid_signature_is_bad_payload(body: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        paynow.verify(body, paynow_signature(body, SK), [SK])
    assert caught.value.reason == "bad_payload"


def test_decoded_payload_is_refused() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        paynow.verify(N3_BODY.decode(), N3_SIG, [SK])  # type: ignore[arg-type]


@pytest.mark.parametrize("keys", [[], [""], SK])
def test_misconfigured_keys_fail_loudly(keys: Any) -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        paynow.verify(N3_BODY, N3_SIG, keys)


@given(
    notification=st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=5),
    key=st.text(min_size=1, max_size=40),
)
def test_any_signed_notification_round_trips(notification: dict[str, str], key: str) -> None:
    body = json.dumps(notification, ensure_ascii=False, indent=2).encode()
    assert paynow.verify(body, paynow.sign(body, key), [key]) == notification


# --- the Signature header ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Signature", "signature", "SIGNATURE", "sIgNaTuRe"])
def test_signature_header_lookup_ignores_case_in_a_plain_dict(name: str) -> None:
    assert paynow.signature_header({"Content-Type": "application/json", name: N3_SIG}) == N3_SIG


def test_signature_header_lookup_works_with_werkzeug_headers() -> None:
    headers = Headers([("Content-Type", "application/json"), ("signature", N3_SIG)])
    assert paynow.signature_header(headers) == N3_SIG


def test_missing_signature_header_is_none() -> None:
    assert paynow.signature_header({"Content-Type": "application/json"}) is None
    assert paynow.signature_header(Headers()) is None


# --- normalise ---------------------------------------------------------------------------------


def test_notification_is_normalised() -> None:
    event = paynow.normalise(paynow.verify(N3_BODY, N3_SIG, [SK]))
    assert event.provider == Provider.PAYNOW
    assert event.kind == EventKind.PAYMENT_STATUS
    assert event.event_key == "NOLV-8F9-08K-WGD:CONFIRMED:2024-05-01T12:00:00"
    assert (event.provider_payment_id, event.order_ref) == ("NOLV-8F9-08K-WGD", "order-123")
    assert (event.status, event.event_type, event.modified_at) == (
        "CONFIRMED",
        "CONFIRMED",
        "2024-05-01T12:00:00",
    )
    assert event.occurred_at is None  # modifiedAt has no timezone: never guess one


def test_modified_at_is_kept_exactly_as_received() -> None:
    notification = json.loads(N2_BODY) | {"modifiedAt": "2018-12-12T13:24:52.123"}
    assert paynow.normalise(notification).modified_at == "2018-12-12T13:24:52.123"


def test_unknown_status_is_still_normalised() -> None:
    notification = json.loads(N3_BODY) | {"status": "WAITING_FOR_CONFIRMATION"}
    event = paynow.normalise(notification)
    assert event.status == "WAITING_FOR_CONFIRMATION"
    assert event.event_key == "NOLV-8F9-08K-WGD:WAITING_FOR_CONFIRMATION:2024-05-01T12:00:00"


def test_redelivery_has_the_same_key_and_a_new_status_does_not() -> None:
    first = paynow.normalise(json.loads(N3_BODY))
    again = paynow.normalise(json.loads(N3_BODY))
    later = paynow.normalise(json.loads(N3_BODY) | {"status": "PENDING"})
    assert first.event_key == again.event_key != later.event_key


def test_the_old_sdk_fixture_without_external_id_is_refused() -> None:
    with pytest.raises(PayloadError, match="externalId"):
        paynow.normalise(json.loads(N1_BODY))


@pytest.mark.parametrize("field", ["paymentId", "externalId", "status", "modifiedAt"])
@pytest.mark.parametrize("value", [None, 17, "", "  ", ["x"], "x" * 101])
def test_bad_fields_raise_payload_error(field: str, value: Any) -> None:
    notification = json.loads(N3_BODY) | {field: value}
    with pytest.raises(PayloadError, match=field):
        paynow.normalise(notification)


def test_notification_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError):
        paynow.normalise(["NOLV-8F9-08K-WGD"])  # type: ignore[arg-type]
