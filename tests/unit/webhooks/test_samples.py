"""webhooks/samples.py: sample events are realistic, unique, and survive sign → verify → normalise."""

from __future__ import annotations

import json

import pytest
import stripe as stripe_sdk
from helpers import T0, stripe_header
from stdnum.pl import nip

from webhooks import samples, stripe
from webhooks.events import EventKind

SECRET = "whsec_sample"
KINDS = {
    "invoice.paid": EventKind.PAID,
    "checkout.session.completed": EventKind.PAID,
    "payment_intent.succeeded": EventKind.PAID,
    "charge.refunded": EventKind.REFUNDED,
}


def test_sample_types_are_the_four_events_kwit_acts_on() -> None:
    assert set(samples.SAMPLE_TYPES) == set(KINDS)


@pytest.mark.parametrize("event_type", samples.SAMPLE_TYPES)
def test_sample_survives_sign_verify_normalise(event_type: str) -> None:
    event = samples.sample_event(event_type, now=T0, order_ref="ord_42", suffix="s1")
    body = samples.encode(event)
    verified = stripe.verify(body, stripe_header(body, SECRET, timestamp=T0), [SECRET], now=T0)
    result = stripe.normalise(verified)
    assert verified == event
    assert (result.kind, result.event_type, result.event_key) == (
        KINDS[event_type],
        event_type,
        event["id"],
    )
    assert (result.order_ref, result.currency, result.livemode) == ("ord_42", "PLN", False)
    assert result.provider_payment_id == "pi_s1"
    assert result.customer_ref == "cus_s1"


@pytest.mark.parametrize("event_type", samples.SAMPLE_TYPES)
def test_sample_body_verifies_with_stripe_python_too(event_type: str) -> None:
    body = samples.encode(samples.sample_event(event_type, now=T0))
    header = stripe.sign(body, SECRET, timestamp=T0)
    assert stripe_sdk.WebhookSignature.verify_header(body, header, SECRET, tolerance=10**12)


def test_invoice_paid_sample_has_a_23_percent_line_and_a_polish_buyer() -> None:
    event = samples.sample_event("invoice.paid", now=T0, suffix="s1")
    line = event["data"]["object"]["lines"]["data"][0]
    assert (line["amount"], line["taxes"][0]["amount"]) == (10000, 2300)
    assert line["taxes"][0]["tax_behavior"] == "exclusive"
    assert line["taxes"][0]["tax_rate_details"]["percentage_decimal"] == "23.0"
    result = stripe.normalise(event)
    assert [(li.quantity, li.unit_gross_minor, li.vat_rate) for li in result.lines] == [
        (1, 12300, "23")
    ]
    assert result.billing is not None
    assert (result.billing.nip, result.billing.city, result.billing.country) == (
        "5260250995",
        "Warszawa",
        "PL",
    )
    assert nip.is_valid(result.billing.nip)


@pytest.mark.parametrize("amount", [1, 100, 12300, 99999, 1_000_001])
def test_invoice_paid_sample_adds_up_for_any_amount(amount: int) -> None:
    event = samples.sample_event("invoice.paid", now=T0, amount_minor=amount)
    line = event["data"]["object"]["lines"]["data"][0]
    assert line["amount"] + line["taxes"][0]["amount"] == amount
    assert stripe.normalise(event).lines[0].unit_gross_minor == amount


@pytest.mark.parametrize("event_type", samples.SAMPLE_TYPES)
def test_amount_currency_and_livemode_are_passed_through(event_type: str) -> None:
    event = samples.sample_event(
        event_type, now=T0, amount_minor=5000, currency="EUR", livemode=True
    )
    result = stripe.normalise(event)
    assert (result.currency, result.livemode, event["livemode"]) == ("EUR", True, True)
    if result.kind == EventKind.REFUNDED:
        assert result.refunded_minor == 5000
    else:
        assert result.amount_minor == 5000


def test_ids_are_unique_without_a_suffix() -> None:
    events = [samples.sample_event(t, now=T0) for t in samples.SAMPLE_TYPES for _ in range(20)]
    assert len({e["id"] for e in events}) == len(events)
    assert len({e["data"]["object"]["id"] for e in events}) == len(events)


def test_same_suffix_shares_the_payment_but_not_the_event_id() -> None:
    events = [samples.sample_event(t, now=T0, suffix="same") for t in samples.SAMPLE_TYPES]
    assert len({e["id"] for e in events}) == len(events)
    assert {stripe.normalise(e).provider_payment_id for e in events} == {"pi_same"}


def test_sample_is_deterministic_given_a_suffix() -> None:
    first = samples.sample_event("invoice.paid", now=T0, suffix="x", order_ref="o")
    assert first == samples.sample_event("invoice.paid", now=T0, suffix="x", order_ref="o")
    assert first["created"] == T0
    assert first["data"]["object"]["status_transitions"]["paid_at"] == T0


def test_without_order_ref_nothing_links_to_an_order() -> None:
    for event_type in samples.SAMPLE_TYPES:
        assert stripe.normalise(samples.sample_event(event_type, now=T0)).order_ref is None


def test_encode_is_compact_utf8_with_literal_polish_letters() -> None:
    body = samples.encode(samples.sample_event("invoice.paid", now=T0, suffix="s1"))
    assert "Wiśniewski".encode() in body
    assert b"\\u" not in body
    assert b": " not in body
    assert b", " not in body
    assert json.loads(body)["type"] == "invoice.paid"


@pytest.mark.parametrize("event_type", ["customer.created", "invoice.payment_succeeded", ""])
def test_unknown_sample_type_is_refused(event_type: str) -> None:
    with pytest.raises(ValueError, match="no sample"):
        samples.sample_event(event_type, now=T0)


def test_negative_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        samples.sample_event("invoice.paid", now=T0, amount_minor=-1)
