"""Sample Stripe events shaped like those `stripe trigger` sends, for `kwit simulate` and tests.

The buyer is a fictional Warsaw company with a NIP that passes the checksum. Events built with
the same `suffix` describe the same payment (same customer, PaymentIntent and charge ids).
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["API_VERSION", "BUYER", "SAMPLE_TYPES", "encode", "sample_event"]

API_VERSION = "2025-10-29.clover"
SAMPLE_TYPES: tuple[str, ...] = (
    "invoice.paid",
    "checkout.session.completed",
    "payment_intent.succeeded",
    "charge.refunded",
)

BUYER: dict[str, Any] = {
    "name": "Pracownia Ceramiki Wiśniewski sp. z o.o.",
    "email": "faktury@pracownia-wisniewski.example",
    "address": {
        "line1": "ul. Marszałkowska 84/92",
        "line2": "lok. 12",
        "postal_code": "00-514",
        "city": "Warszawa",
        "state": None,
        "country": "PL",
    },
    "nip": "5260250995",
}

_VAT_PERCENT = 23
_ALPHABET = string.ascii_letters + string.digits
_EVENT_CODES = {
    "invoice.paid": "ip",
    "checkout.session.completed": "cs",
    "payment_intent.succeeded": "pi",
    "charge.refunded": "rf",
}


def sample_event(
    event_type: str,
    *,
    now: int,
    order_ref: str | None = None,
    suffix: str | None = None,
    amount_minor: int = 12300,
    currency: str = "pln",
    livemode: bool = False,
) -> dict[str, Any]:
    """A complete event of `event_type` (one of SAMPLE_TYPES) paying `amount_minor` gross.

    `suffix` makes the ids; a random one is drawn when it is None, so repeated calls never
    collide. `order_ref` goes into metadata.kwit_order (and client_reference_id for Checkout).
    """
    builders: dict[str, Callable[[_Ids, int, str, str | None], dict[str, Any]]] = {
        "invoice.paid": _invoice,
        "checkout.session.completed": _checkout_session,
        "payment_intent.succeeded": _payment_intent,
        "charge.refunded": _charge,
    }
    if event_type not in builders:
        raise ValueError(f"no sample for {event_type!r}; choose from {', '.join(SAMPLE_TYPES)}")
    if amount_minor < 0:
        raise ValueError("amount_minor must not be negative")
    ids = _Ids(suffix or "".join(secrets.choice(_ALPHABET) for _ in range(24)), now, livemode)
    obj = builders[event_type](ids, amount_minor, currency.lower(), order_ref)
    return {
        "id": f"evt_{ids.suffix}{_EVENT_CODES[event_type]}",
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": f"req_{ids.suffix}", "idempotency_key": None},
        "type": event_type,
    }


def encode(event: dict[str, Any]) -> bytes:
    """The body bytes as Stripe sends them: compact JSON, UTF-8, non-ASCII left literal."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Ids:
    """The ids one sample payment shares across its events."""

    suffix: str
    now: int
    livemode: bool

    @property
    def customer(self) -> str:
        return f"cus_{self.suffix}"

    @property
    def payment_intent(self) -> str:
        return f"pi_{self.suffix}"

    @property
    def charge(self) -> str:
        return f"ch_{self.suffix}"


def _split_gross(gross: int) -> tuple[int, int]:
    """Net and VAT for a gross amount at 23%, rounded half up (12300 → 10000 + 2300)."""
    net = (gross * 100 + (100 + _VAT_PERCENT) // 2) // (100 + _VAT_PERCENT)
    return net, gross - net


def _metadata(order_ref: str | None) -> dict[str, str]:
    return {"kwit_order": order_ref} if order_ref else {}


def _invoice(ids: _Ids, gross: int, currency: str, order_ref: str | None) -> dict[str, Any]:
    net, tax = _split_gross(gross)
    line = {
        "id": f"il_{ids.suffix}",
        "object": "line_item",
        "amount": net,
        "currency": currency,
        "description": "Plan Pro (abonament miesięczny)",
        "discount_amounts": [],
        "discountable": True,
        "livemode": ids.livemode,
        "metadata": {},
        "period": {"start": ids.now, "end": ids.now + 30 * 86400},
        "quantity": 1,
        "taxes": [
            {
                "amount": tax,
                "tax_behavior": "exclusive",
                "tax_rate_details": {"percentage_decimal": f"{_VAT_PERCENT}.0"},
                "taxability_reason": "standard_rated",
                "taxable_amount": net,
                "type": "tax_rate_details",
            }
        ],
    }
    return {
        "id": f"in_{ids.suffix}",
        "object": "invoice",
        "amount_due": gross,
        "amount_paid": gross,
        "amount_remaining": 0,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": ids.now,
        "currency": currency,
        "customer": ids.customer,
        "customer_address": dict(BUYER["address"]),
        "customer_email": BUYER["email"],
        "customer_name": BUYER["name"],
        "customer_tax_exempt": "none",
        "customer_tax_ids": [{"type": "eu_vat", "value": f"PL{BUYER['nip']}"}],
        "lines": {
            "object": "list",
            "data": [line],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/in_{ids.suffix}/lines",
        },
        "livemode": ids.livemode,
        "metadata": _metadata(order_ref),
        "number": f"KW-{ids.suffix[:8].upper()}-0001",
        "payment_intent": ids.payment_intent,
        "status": "paid",
        "status_transitions": {"finalized_at": ids.now, "paid_at": ids.now},
        "subtotal": net,
        "total": gross,
        "total_excluding_tax": net,
    }


def _checkout_session(
    ids: _Ids, gross: int, currency: str, order_ref: str | None
) -> dict[str, Any]:
    net, tax = _split_gross(gross)
    return {
        "id": f"cs_test_{ids.suffix}" if not ids.livemode else f"cs_live_{ids.suffix}",
        "object": "checkout.session",
        "amount_subtotal": net,
        "amount_total": gross,
        "client_reference_id": order_ref,
        "created": ids.now,
        "currency": currency,
        "customer": ids.customer,
        "customer_details": {
            "address": dict(BUYER["address"]),
            "email": BUYER["email"],
            "name": BUYER["name"],
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [{"type": "eu_vat", "value": f"PL{BUYER['nip']}"}],
        },
        "invoice": None,
        "livemode": ids.livemode,
        "metadata": _metadata(order_ref),
        "mode": "payment",
        "payment_intent": ids.payment_intent,
        "payment_method_types": ["card", "blik", "p24"],
        "payment_status": "paid",
        "status": "complete",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": tax},
    }


def _payment_intent(ids: _Ids, gross: int, currency: str, order_ref: str | None) -> dict[str, Any]:
    return {
        "id": ids.payment_intent,
        "object": "payment_intent",
        "amount": gross,
        "amount_capturable": 0,
        "amount_received": gross,
        "capture_method": "automatic",
        "created": ids.now,
        "currency": currency,
        "customer": ids.customer,
        "description": "Kwit sample payment",
        "latest_charge": ids.charge,
        "livemode": ids.livemode,
        "metadata": _metadata(order_ref),
        "payment_method_types": ["card", "blik", "p24"],
        "status": "succeeded",
    }


def _charge(ids: _Ids, gross: int, currency: str, order_ref: str | None) -> dict[str, Any]:
    refund = {
        "id": f"re_{ids.suffix}",
        "object": "refund",
        "amount": gross,
        "charge": ids.charge,
        "created": ids.now,
        "currency": currency,
        "payment_intent": ids.payment_intent,
        "reason": "requested_by_customer",
        "status": "succeeded",
    }
    return {
        "id": ids.charge,
        "object": "charge",
        "amount": gross,
        "amount_captured": gross,
        "amount_refunded": gross,
        "billing_details": {
            "address": dict(BUYER["address"]),
            "email": BUYER["email"],
            "name": BUYER["name"],
            "phone": None,
        },
        "captured": True,
        "created": ids.now,
        "currency": currency,
        "customer": ids.customer,
        "livemode": ids.livemode,
        "metadata": _metadata(order_ref),
        "paid": True,
        "payment_intent": ids.payment_intent,
        "refunded": True,
        "refunds": {
            "object": "list",
            "data": [refund],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/charges/{ids.charge}/refunds",
        },
        "status": "succeeded",
    }
