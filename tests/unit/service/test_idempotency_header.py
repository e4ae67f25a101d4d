"""Idempotency-Key header parsing (RFC 8941 sf-string or bare) and the request fingerprint."""

import pytest

from service.idempotency import MAX_KEY_LENGTH, fingerprint, parse_key


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"with space and ;,= inside"', "with space and ;,= inside"),
        (r'"escaped \" quote and \\ backslash"', 'escaped " quote and \\ backslash'),
        ("  order-1:retry/2  ", "order-1:retry/2"),
        ('"' + "k" * MAX_KEY_LENGTH + '"', "k" * MAX_KEY_LENGTH),
        ("k" * MAX_KEY_LENGTH, "k" * MAX_KEY_LENGTH),
    ],
)
def test_accepted_keys(header: str, key: str) -> None:
    assert parse_key([header]) == key


def test_quoted_and_bare_forms_are_the_same_key() -> None:
    assert parse_key(['"abc"']) == parse_key(["abc"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "required"),
        (["a", "b"], "exactly one"),
        (['""'], "empty"),
        ([""], "structured-field string"),
        (['"' + "k" * (MAX_KEY_LENGTH + 1) + '"'], "at most 255"),
        (["k" * (MAX_KEY_LENGTH + 1)], "at most 255"),
        (['"unterminated'], "structured-field string"),
        (['"a"b'], "structured-field string"),
        (['"a";p=1'], "structured-field string"),
        (["two words"], "structured-field string"),
        (["a,b"], "structured-field string"),
        (['"bad \\x escape"'], "structured-field string"),
        (['"tab\tinside"'], "structured-field string"),
        (['"zażółć"'], "structured-field string"),
        (["zażółć"], "structured-field string"),
    ],
)
def test_refused_keys(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_key(values)


def test_fingerprint_covers_method_path_and_exact_body() -> None:
    base = fingerprint("POST", "/v1/orders", b'{"a":1}')
    assert base == fingerprint("post", "/v1/orders", b'{"a":1}')
    assert len(base) == 64
    assert base != fingerprint("PUT", "/v1/orders", b'{"a":1}')
    assert base != fingerprint("POST", "/v1/orders/x/refunds", b'{"a":1}')
    assert base != fingerprint("POST", "/v1/orders", b'{"a": 1}')  # raw bytes, not parsed JSON
    # Length-prefixed parts: moving bytes between path and body changes the fingerprint.
    assert fingerprint("POST", "/v1/ab", b"c") != fingerprint("POST", "/v1/a", b"bc")
