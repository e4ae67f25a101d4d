"""Builders shared by the webhook unit tests: signed headers and minimal Stripe events."""

from __future__ import annotations

from typing import Any

from webhooks import paynow, stripe

T0 = 1_700_000_000  # the timestamp of the protocol vectors


def stripe_header(payload: bytes, secret: str, *, timestamp: int = T0) -> str:
    """A `Stripe-Signature` value for `payload`, built by the code under test's own signer."""
    return stripe.sign(payload, secret, timestamp=timestamp)


def paynow_signature(payload: bytes, key: str) -> str:
    """A PayNow `Signature` value for `payload`."""
    return paynow.sign(payload, key)


def stripe_event(event_type: str, obj: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A minimal v1 event wrapping `obj` (no `data` at all when `obj` is None)."""
    event: dict[str, Any] = {
        "id": "evt_test_1",
        "object": "event",
        "type": event_type,
        "created": T0,
        "livemode": False,
    }
    if obj is not None:
        event["data"] = {"object": obj}
    event.update(extra)
    return event


def invoice_line(
    amount: int,
    *,
    quantity: int | None = 1,
    tax: int | None = None,
    rate: str | None = "23.0",
    behavior: str = "exclusive",
    description: str | None = "Plan Pro",
    **extra: Any,
) -> dict[str, Any]:
    """An invoice line in the current (`taxes[]`) API shape; `tax` None means no taxes at all."""
    line: dict[str, Any] = {
        "object": "line_item",
        "amount": amount,
        "description": description,
        "quantity": quantity,
    }
    if tax is not None:
        details = {"percentage_decimal": rate} if rate is not None else None
        line["taxes"] = [
            {
                "amount": tax,
                "tax_behavior": behavior,
                "taxable_amount": amount,
                "tax_rate_details": details,
            }
        ]
    line.update(extra)
    return line


def invoice(lines: list[dict[str, Any]], amount_paid: int, **extra: Any) -> dict[str, Any]:
    """A paid invoice with the given lines and no buyer data unless passed in `extra`."""
    obj: dict[str, Any] = {
        "id": "in_test_1",
        "object": "invoice",
        "currency": "pln",
        "amount_paid": amount_paid,
        "customer": "cus_test_1",
        "lines": {"object": "list", "data": lines, "has_more": False},
    }
    obj.update(extra)
    return obj
