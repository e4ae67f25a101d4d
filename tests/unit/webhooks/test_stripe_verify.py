"""webhooks/stripe.py: verify/sign against the protocol vectors and stripe-python, and normalise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe as stripe_sdk
from helpers import T0, invoice, invoice_line, stripe_event, stripe_header
from hypothesis import given
from hypothesis import strategies as st

from webhooks import stripe
from webhooks.errors import PayloadError, SignatureError
from webhooks.events import EventKind, Provider

SECRET = "whsec_test_secret"
OLD_SECRET = "whsec_old_secret"
BODY_1 = b'{"id":"evt_1","object":"event","type":"invoice.paid"}'
BODY_2 = (
    '{"id":"evt_2","object":"event","type":"checkout.session.completed",'
    '"data":{"object":{"customer_details":{"name":"Zofia Wójcik"}}}}'
).encode()
V1_BODY_1 = "dfb4777aaaec4ea29ff455dd4df7fe6b2ef71096ad3a93a158db7e100109ea91"
V1_BODY_2 = "ea333c4945f01a18fcce91ed72e18085bbb204acf2025ab89a730e7014e52367"
V1_BODY_1_OLD = "8113ff949a3f8ace9d8547543a55d4e68c6cbfa8342e6ee9bd7f55687da14532"
WRONG_V1 = "0" * 64


def signature_reason(payload: bytes, header: str | None, **kwargs: Any) -> str:
    kwargs.setdefault("now", T0)
    with pytest.raises(SignatureError) as caught:
        stripe.verify(payload, header, kwargs.pop("secrets", [SECRET]), **kwargs)
    return caught.value.reason


# --- protocol vectors (docs/protocols/stripe.md) -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "secret", "v1"),
    [(BODY_1, SECRET, V1_BODY_1), (BODY_2, SECRET, V1_BODY_2), (BODY_1, OLD_SECRET, V1_BODY_1_OLD)],
)
def test_sign_reproduces_the_protocol_vectors(body: bytes, secret: str, v1: str) -> None:
    assert stripe.sign(body, secret, timestamp=T0) == f"t={T0},v1={v1}"


@pytest.mark.parametrize(
    ("body", "secret", "v1"),
    [(BODY_1, SECRET, V1_BODY_1), (BODY_2, SECRET, V1_BODY_2), (BODY_1, OLD_SECRET, V1_BODY_1_OLD)],
)
def test_verify_accepts_the_protocol_vectors(body: bytes, secret: str, v1: str) -> None:
    assert stripe.verify(body, f"t={T0},v1={v1}", [secret], now=T0) == json.loads(body)


def test_rotation_header_verifies_against_either_secret() -> None:
    header = f"t={T0},v1={WRONG_V1},v1={V1_BODY_1_OLD}"
    event = stripe.verify(BODY_1, header, [SECRET, OLD_SECRET], now=T0)
    assert event["id"] == "evt_1"


def test_rotation_header_needs_the_old_secret_configured() -> None:
    header = f"t={T0},v1={WRONG_V1},v1={V1_BODY_1_OLD}"
    assert signature_reason(BODY_1, header, secrets=[SECRET]) == "mismatch"


def test_v0_only_header_is_rejected() -> None:
    assert signature_reason(BODY_1, f"t={T0},v0={V1_BODY_1}") == "no_signature"


def test_valid_v0_never_rescues_a_wrong_v1() -> None:
    assert signature_reason(BODY_1, f"t={T0},v1={WRONG_V1},v0={V1_BODY_1}") == "mismatch"


def test_non_utf8_body_is_hashed_as_raw_bytes_then_refused_as_payload() -> None:
    body = b'{"id":"evt_1","name":"Zofia W\xf3jcik"}'  # Latin-1, not UTF-8
    with pytest.raises(PayloadError) as caught:
        stripe.verify(body, stripe_header(body, SECRET), [SECRET], now=T0)
    assert caught.value.reason == "bad_payload"  # the signature itself matched


# --- stripe-python as an oracle ----------------------------------------------------------------


@pytest.mark.parametrize("body", [BODY_1, BODY_2])
def test_header_built_by_stripe_python_verifies(body: bytes) -> None:
    signature = stripe_sdk.WebhookSignature._compute_signature(f"{T0}.{body.decode()}", SECRET)
    assert stripe.verify(body, f"t={T0},v1={signature}", [SECRET], now=T0) == json.loads(body)


@pytest.mark.parametrize("body", [BODY_1, BODY_2])
def test_our_header_passes_stripe_python(body: bytes) -> None:
    header = stripe.sign(body, SECRET, timestamp=T0)
    # stripe-python only rejects old timestamps; a huge tolerance takes its clock out of play.
    assert stripe_sdk.WebhookSignature.verify_header(body, header, SECRET, tolerance=10**12)


def test_stripe_python_rejects_our_header_under_another_secret() -> None:
    header = stripe.sign(BODY_1, SECRET, timestamp=T0)
    with pytest.raises(stripe_sdk.SignatureVerificationError):
        stripe_sdk.WebhookSignature.verify_header(BODY_1, header, OLD_SECRET, tolerance=10**12)


# --- one negative test per reason --------------------------------------------------------------


def test_wrong_secret_is_a_mismatch() -> None:
    header = stripe_header(BODY_1, "whsec_someone_else")
    assert signature_reason(BODY_1, header) == "mismatch"


def test_tampered_body_is_a_mismatch() -> None:
    header = stripe_header(BODY_1, SECRET)
    assert signature_reason(BODY_1.replace(b"evt_1", b"evt_2"), header) == "mismatch"


@pytest.mark.parametrize(("offset", "reason"), [(-301, "too_old"), (301, "too_new")])
def test_timestamp_outside_tolerance(offset: int, reason: str) -> None:
    header = stripe_header(BODY_1, SECRET, timestamp=T0 + offset)
    assert signature_reason(BODY_1, header) == reason


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_on_the_tolerance_edge_is_accepted(offset: int) -> None:
    header = stripe_header(BODY_1, SECRET, timestamp=T0 + offset)
    assert stripe.verify(BODY_1, header, [SECRET], now=T0)["id"] == "evt_1"


def test_tolerance_is_a_parameter() -> None:
    header = stripe_header(BODY_1, SECRET, timestamp=T0 - 600)
    assert stripe.verify(BODY_1, header, [SECRET], now=T0, tolerance=600)["id"] == "evt_1"
    assert signature_reason(BODY_1, header, tolerance=599) == "too_old"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        f"v1={V1_BODY_1}",  # no t
        f"t=abc,v1={V1_BODY_1}",  # non-numeric t
        f"t=,v1={V1_BODY_1}",
        f"t=-1700000000,v1={V1_BODY_1}",
        f"t=1.7e9,v1={V1_BODY_1}",
        f"t=١٧٠٠٠٠٠٠٠٠,v1={V1_BODY_1}",  # Arabic-Indic digits: int() would accept them  # noqa: RUF001
        f"t={T0},t={T0},v1={V1_BODY_1}",  # which t was signed?
        f"t={'9' * 40},v1={V1_BODY_1}",
        "garbage",
        "t",
    ],
)
def test_malformed_header(header: str | None) -> None:
    assert signature_reason(BODY_1, header) == "malformed_header"


def test_whitespace_around_items_is_tolerated() -> None:
    assert stripe.verify(BODY_1, f" t={T0} , v1={V1_BODY_1} ", [SECRET], now=T0)["id"] == "evt_1"


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"evt_1",',  # truncated
        b"[1,2,3]",  # an array, not an object
        b'"evt_1"',
        b"",
        b'{"amount":NaN}',
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        '{"id":"evt_1"}'.encode("utf-16"),
        b"\xff\xfe\xfa",  # not UTF-8 at all
    ],
)
def test_unreadable_body_with_valid_signature_is_bad_payload(body: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        stripe.verify(body, stripe_header(body, SECRET), [SECRET], now=T0)
    assert caught.value.reason == "bad_payload"


def test_deeply_nested_body_is_bad_payload_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PayloadError):
        stripe.verify(body, stripe_header(body, SECRET), [SECRET], now=T0)


def test_hmac_is_checked_before_the_timestamp() -> None:
    stale = stripe_header(BODY_1, "whsec_someone_else", timestamp=T0 - 10_000)
    assert signature_reason(BODY_1, stale) == "mismatch"


def test_timestamp_is_checked_before_the_json() -> None:
    body = b"not json"
    assert signature_reason(body, stripe_header(body, SECRET, timestamp=T0 - 10_000)) == "too_old"


def test_decoded_payload_is_refused() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        stripe.verify(BODY_1.decode(), stripe_header(BODY_1, SECRET), [SECRET], now=T0)  # type: ignore[arg-type]


@pytest.mark.parametrize("secrets", [[], [""], SECRET])
def test_misconfigured_secrets_fail_loudly(secrets: Any) -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        stripe.verify(BODY_1, f"t={T0},v1={V1_BODY_1}", secrets, now=T0)


@given(
    event=st.dictionaries(
        st.text(max_size=10), st.one_of(st.integers(), st.text(), st.booleans()), max_size=5
    ),
    secret=st.text(min_size=1, max_size=30),
    data=st.data(),
)
def test_any_signed_object_verifies_and_any_flipped_byte_does_not(
    event: dict[str, Any], secret: str, data: st.DataObject
) -> None:
    body = json.dumps(event, ensure_ascii=False).encode()
    header = stripe.sign(body, secret, timestamp=T0)
    assert stripe.verify(body, header, [secret], now=T0) == event
    index = data.draw(st.integers(0, len(body) - 1))
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    assert signature_reason(tampered, header, secrets=[secret]) == "mismatch"


# --- normalise: invoice.paid -------------------------------------------------------------------

BUYER = {
    "customer_name": "Zofia Wójcik sp. z o.o.",
    "customer_email": "billing@example.pl",
    "customer_address": {
        "line1": "ul. Prosta 1/2",
        "line2": None,
        "postal_code": "00-838",
        "city": "Warszawa",
        "country": "pl",
    },
    "customer_tax_ids": [{"type": "eu_vat", "value": "PL5260250995"}],
}


def paid_invoice(**extra: Any) -> dict[str, Any]:
    fields = {"payment_intent": "pi_1", "metadata": {"kwit_order": "ord_1"}, **BUYER, **extra}
    obj = invoice([invoice_line(10000, tax=2300)], 12300)
    return stripe_event("invoice.paid", {**obj, **fields})


def test_invoice_paid_is_normalised() -> None:
    event = paid_invoice(status_transitions={"paid_at": T0 + 5})
    result = stripe.normalise(event)
    assert (result.provider, result.kind, result.event_key) == (
        Provider.STRIPE,
        "paid",
        "evt_test_1",
    )
    assert result.event_type == "invoice.paid"
    assert result.provider_payment_id == "pi_1"
    assert (result.external_ref, result.order_ref, result.customer_ref) == (
        "in_test_1",
        "ord_1",
        "cus_test_1",
    )
    assert (result.amount_minor, result.currency, result.livemode) == (12300, "PLN", False)
    assert result.occurred_at == datetime.fromtimestamp(T0 + 5, tz=UTC)
    assert [(li.name, li.quantity, li.unit_gross_minor, li.vat_rate) for li in result.lines] == [
        ("Plan Pro", 1, 12300, "23")
    ]


def test_invoice_billing_takes_the_nip_from_a_polish_eu_vat_id() -> None:
    billing = stripe.normalise(paid_invoice()).billing
    assert billing is not None
    assert billing.as_dict() == {
        "name": "Zofia Wójcik sp. z o.o.",
        "email": "billing@example.pl",
        "nip": "5260250995",
        "tax_id": None,
        "line1": "ul. Prosta 1/2",
        "line2": None,
        "postal_code": "00-838",
        "city": "Warszawa",
        "country": "PL",
    }
    assert "Wójcik" not in repr(billing)


@pytest.mark.parametrize(
    ("tax_ids", "nip", "tax_id"),
    [
        ([{"type": "pl_nip", "value": "526-025-09-95"}], "5260250995", None),
        ([{"type": "eu_vat", "value": "DE123456789"}], None, "DE123456789"),
        ([{"type": "eu_vat", "value": "PL5260250996"}], None, "PL5260250996"),  # bad checksum
        (
            [{"type": "eu_vat", "value": "DE123456789"}, {"type": "pl_nip", "value": "5260250995"}],
            "5260250995",
            "DE123456789",
        ),
        ([], None, None),
    ],
)
def test_invoice_tax_ids(
    tax_ids: list[dict[str, str]], nip: str | None, tax_id: str | None
) -> None:
    billing = stripe.normalise(paid_invoice(customer_tax_ids=tax_ids)).billing
    assert billing is not None
    assert (billing.nip, billing.tax_id) == (nip, tax_id)


def test_invoice_without_customer_name_has_no_billing() -> None:
    assert stripe.normalise(paid_invoice(customer_name=None)).billing is None


def test_invoice_paid_falls_back_to_invoice_id_and_event_created() -> None:
    result = stripe.normalise(paid_invoice(payment_intent=None, metadata={}))
    assert result.provider_payment_id == "in_test_1"
    assert result.order_ref is None
    assert result.occurred_at == datetime.fromtimestamp(T0, tz=UTC)


def test_invoice_paid_reads_the_payment_intent_from_payments_in_new_api_versions() -> None:
    payments = {"data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_9"}}]}
    result = stripe.normalise(paid_invoice(payment_intent=None, payments=payments))
    assert result.provider_payment_id == "pi_9"


def test_expanded_customer_object_gives_its_id() -> None:
    result = stripe.normalise(paid_invoice(customer={"id": "cus_x", "object": "customer"}))
    assert result.customer_ref == "cus_x"


# --- normalise: invoice lines and rounding -----------------------------------------------------


def lines_of(lines: list[dict[str, Any]], amount_paid: int) -> list[tuple[int, int, str | None]]:
    result = stripe.normalise(stripe_event("invoice.paid", invoice(lines, amount_paid)))
    assert sum(li.quantity * li.unit_gross_minor for li in result.lines) == amount_paid
    return [(li.quantity, li.unit_gross_minor, li.vat_rate) for li in result.lines]


def test_exclusive_tax_is_added_to_the_net_line_amount() -> None:
    lines = [invoice_line(10000, tax=2300), invoice_line(5000, tax=400, rate="8.0")]
    assert lines_of(lines, 17700) == [(1, 12300, "23"), (1, 5400, "8")]


def test_inclusive_tax_is_already_in_the_line_amount() -> None:
    assert lines_of([invoice_line(12300, tax=2300, behavior="inclusive")], 12300) == [
        (1, 12300, "23")
    ]


def test_line_discounts_are_subtracted_before_tax() -> None:
    line = invoice_line(10000, tax=2070, discount_amounts=[{"amount": 1000, "discount": "di_1"}])
    assert lines_of([line], 11070) == [(1, 11070, "23")]


def test_one_unit_of_rounding_goes_to_the_last_line() -> None:
    lines = [invoice_line(5000, tax=0, rate="0"), invoice_line(5000, tax=0, rate="0")]
    assert lines_of(lines, 10001) == [(1, 5000, "0"), (1, 5001, "0")]


def test_credit_balance_is_spread_over_the_lines_in_proportion() -> None:
    lines = [invoice_line(10000, tax=2300), invoice_line(20000, tax=4600)]
    assert lines_of(lines, 30000) == [(1, 10000, "23"), (1, 20000, "23")]


def test_quantity_that_does_not_divide_the_total_splits_the_line() -> None:
    assert lines_of([invoice_line(10000, quantity=3, tax=0, rate="0")], 10000) == [
        (2, 3333, "0"),
        (1, 3334, "0"),
    ]


def test_quantity_that_divides_the_total_stays_one_line() -> None:
    assert lines_of([invoice_line(30000, quantity=3, tax=6900)], 36900) == [(3, 12300, "23")]


def test_proration_credit_lines_keep_their_sign_and_the_last_line_absorbs_the_rest() -> None:
    lines = [invoice_line(-5000, tax=-1150), invoice_line(10000, tax=2300)]
    assert lines_of(lines, 6151) == [(1, -6150, "23"), (1, 12301, "23")]


def test_missing_quantity_counts_as_one() -> None:
    assert lines_of([invoice_line(10000, quantity=None, tax=2300)], 12300) == [(1, 12300, "23")]


def test_old_tax_amounts_with_expanded_tax_rate() -> None:
    line = invoice_line(
        10000, tax_amounts=[{"amount": 800, "inclusive": False, "tax_rate": {"percentage": 8.0}}]
    )
    assert lines_of([line], 10800) == [(1, 10800, "8")]


def test_rate_is_inferred_only_when_one_polish_rate_fits() -> None:
    certain = {"amount": 2300, "inclusive": False, "tax_rate": "txr_1", "taxable_amount": 10000}
    ambiguous = {"amount": 0, "inclusive": False, "tax_rate": "txr_1", "taxable_amount": 1}
    assert lines_of([invoice_line(10000, tax_amounts=[certain])], 12300) == [(1, 12300, "23")]
    assert lines_of([invoice_line(1, tax_amounts=[ambiguous])], 1) == [(1, 1, None)]


def test_reverse_charge_line_is_np() -> None:
    line = invoice_line(10000, tax=0, rate=None)
    line["taxes"][0]["taxability_reason"] = "reverse_charge"
    assert lines_of([line], 10000) == [(1, 10000, "np")]


def test_line_without_taxes_has_no_rate() -> None:
    assert lines_of([invoice_line(10000)], 10000) == [(1, 10000, None)]


def test_incomplete_line_page_gives_no_lines() -> None:
    obj = invoice([invoice_line(10000, tax=2300)], 24600)
    obj["lines"]["has_more"] = True
    assert stripe.normalise(stripe_event("invoice.paid", obj)).lines == ()


@given(
    specs=st.lists(
        st.tuples(
            st.integers(-50_000, 500_000),
            st.one_of(st.none(), st.integers(0, 12)),
            st.integers(0, 100_000),
        ),
        min_size=1,
        max_size=6,
    ),
    amount_paid=st.integers(0, 2_000_000),
)
def test_lines_always_add_up_to_amount_paid(
    specs: list[tuple[int, int | None, int]], amount_paid: int
) -> None:
    lines = [invoice_line(amount, quantity=qty, tax=tax) for amount, qty, tax in specs]
    result = stripe.normalise(stripe_event("invoice.paid", invoice(lines, amount_paid)))
    assert sum(li.quantity * li.unit_gross_minor for li in result.lines) == amount_paid
    assert sum(li.quantity for li in result.lines) == sum(q if q else 1 for _, q, _ in specs)
    assert all(li.quantity > 0 for li in result.lines)


# --- normalise: other event types --------------------------------------------------------------


def checkout_session(**extra: Any) -> dict[str, Any]:
    obj = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 12300,
        "currency": "pln",
        "customer": "cus_1",
        "payment_intent": "pi_1",
        "client_reference_id": "ord_ref",
        "metadata": {},
        "customer_details": {
            "name": "Zofia Wójcik sp. z o.o.",
            "email": "zofia@example.pl",
            "address": {"city": "Warszawa", "country": "PL"},
            "tax_ids": [{"type": "eu_vat", "value": "PL5260250995"}],
        },
    }
    return stripe_event("checkout.session.completed", {**obj, **extra})


def test_checkout_session_completed_and_paid() -> None:
    result = stripe.normalise(checkout_session())
    assert (result.kind, result.provider_payment_id, result.external_ref) == (
        EventKind.PAID,
        "pi_1",
        "cs_test_1",
    )
    assert (result.order_ref, result.amount_minor, result.currency) == ("ord_ref", 12300, "PLN")
    assert result.billing is not None
    assert (result.billing.nip, result.billing.city, result.billing.email) == (
        "5260250995",
        "Warszawa",
        "zofia@example.pl",
    )


def test_checkout_metadata_order_wins_over_client_reference_id() -> None:
    result = stripe.normalise(checkout_session(metadata={"kwit_order": "ord_meta"}))
    assert result.order_ref == "ord_meta"


@pytest.mark.parametrize("payment_status", ["unpaid", "no_payment_required"])
def test_checkout_session_not_paid_is_ignored(payment_status: str) -> None:
    result = stripe.normalise(checkout_session(payment_status=payment_status))
    assert result.kind == EventKind.IGNORED
    assert result.amount_minor is None


def test_subscription_checkout_points_at_the_stripe_invoice() -> None:
    result = stripe.normalise(
        checkout_session(mode="subscription", payment_intent=None, invoice="in_7")
    )
    assert (result.external_ref, result.provider_payment_id) == ("in_7", "in_7")


def test_payment_intent_succeeded() -> None:
    obj = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 12300,
        "amount_received": 12300,
        "currency": "eur",
        "metadata": {"kwit_order": "ord_1"},
        "customer": None,
    }
    result = stripe.normalise(stripe_event("payment_intent.succeeded", obj, livemode=True))
    assert (result.kind, result.provider_payment_id, result.order_ref) == ("paid", "pi_1", "ord_1")
    assert (result.amount_minor, result.currency, result.livemode) == (12300, "EUR", True)
    assert (result.customer_ref, result.billing, result.external_ref) == (None, None, None)


def charge(**extra: Any) -> dict[str, Any]:
    obj = {
        "id": "ch_1",
        "object": "charge",
        "amount": 12300,
        "amount_refunded": 5000,
        "currency": "pln",
        "payment_intent": "pi_1",
        "refunds": {"object": "list", "data": [{"id": "re_2"}, {"id": "re_1"}]},
    }
    return stripe_event("charge.refunded", {**obj, **extra})


def test_charge_refunded() -> None:
    result = stripe.normalise(charge())
    assert (result.kind, result.provider_payment_id, result.refund_id) == (
        EventKind.REFUNDED,
        "pi_1",
        "re_2",
    )
    assert (result.refunded_minor, result.amount_minor, result.currency) == (5000, 12300, "PLN")


def test_charge_refunded_without_refund_list_or_payment_intent() -> None:
    result = stripe.normalise(charge(refunds=None, payment_intent=None))
    assert (result.refund_id, result.provider_payment_id) == (None, "ch_1")


@pytest.mark.parametrize(
    "event",
    [
        stripe_event("customer.created", {"id": "cus_1"}),
        stripe_event("invoice.payment_succeeded", {"id": "in_1"}),
        stripe_event("charge.succeeded", None),
        {
            "id": "evt_thin",
            "object": "v2.core.event",
            "type": "v1.billing.meter.error_report_triggered",
        },
    ],
)
def test_other_events_are_ignored(event: dict[str, Any]) -> None:
    result = stripe.normalise(event)
    assert result.kind == EventKind.IGNORED
    assert (result.event_key, result.event_type) == (event["id"], event["type"])


def without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


@pytest.mark.parametrize(
    "event",
    [
        [],
        without(paid_invoice(), "id"),
        paid_invoice() | {"id": 17},
        without(paid_invoice(), "type"),
        paid_invoice() | {"livemode": "no"},
        without(paid_invoice(), "data"),
        stripe_event("invoice.paid", None) | {"data": {"object": []}},
        without(paid_invoice(), "data", "object", "id"),
        without(paid_invoice(), "data", "object", "amount_paid"),
        paid_invoice(amount_paid="12300"),
        paid_invoice(amount_paid=True),
        paid_invoice(amount_paid=-1),
        paid_invoice(currency=985),
        paid_invoice(currency="zł"),
        paid_invoice(customer_tax_ids="PL5260250995"),
        paid_invoice(customer_tax_ids=["PL5260250995"]),
        paid_invoice(customer_name=42),
        paid_invoice(lines={"data": "nope"}),
        paid_invoice(lines={"data": [{"description": "no amount"}]}),
        paid_invoice(lines={"data": [invoice_line(100, tax=23, rate="abc")]}),
        paid_invoice(status_transitions={"paid_at": 10**20}),
        paid_invoice(status_transitions={"paid_at": "yesterday"}),
        without(checkout_session(), "data", "object", "amount_total"),
        checkout_session(customer_details=["Zofia"]),
        charge(amount_refunded=None),
        charge(refunds={"data": [{"object": "refund"}]}),
        stripe_event("payment_intent.succeeded", {"id": "pi_1", "currency": "pln"}),
    ],
)
def test_unreadable_events_raise_payload_error(event: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        stripe.normalise(event)
    assert caught.value.reason == "bad_payload"


def test_payload_error_messages_never_carry_buyer_data() -> None:
    with pytest.raises(PayloadError) as caught:
        stripe.normalise(paid_invoice(customer_tax_ids=["PL5260250995"]))
    assert "5260250995" not in str(caught.value)
