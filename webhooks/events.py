"""ProviderEvent: the one shape every provider's webhook is normalised into before ingestion."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Provider(enum.StrEnum):
    PAYNOW = "paynow"
    STRIPE = "stripe"
    EXTERNAL = "external"


class EventKind(enum.StrEnum):
    """What the event means for Kwit, independent of the provider's vocabulary."""

    PAYMENT_STATUS = "payment_status"  # a payment moved to `status` (PayNow NEW/PENDING/…)
    PAID = "paid"  # a Stripe payment is paid (final)
    REFUNDED = "refunded"  # money went back (Stripe charge.refunded)
    IGNORED = "ignored"  # verified, but nothing Kwit acts on


@dataclass(frozen=True, slots=True)
class LineItem:
    """A billed line as the provider reports it; amounts in minor units, gross."""

    name: str
    quantity: int
    unit_gross_minor: int
    vat_rate: str | None  # "23", "8", "5", "0", "zw", "np" or None when the provider gave none


@dataclass(frozen=True, slots=True)
class Billing:
    """Buyer data the invoice needs. Held in memory only until encrypted into the order."""

    name: str
    email: str | None = None
    nip: str | None = None  # Polish NIP, digits only, when the buyer is a VAT-registered business
    tax_id: str | None = None  # any other tax id as given (e.g. "DE123456789")
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None  # ISO 3166 alpha-2

    def __repr__(self) -> str:  # never let buyer data reach a log line through repr()
        return "Billing(<redacted>)"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified provider event, normalised.

    `event_key` is the dedupe key: the Stripe event id, or PayNow `paymentId:status:modifiedAt`.
    `order_ref` links to a Kwit order (PayNow externalId, Stripe metadata.kwit_order or
    client_reference_id); `external_ref` is the provider object id used as the order's
    external_ref when Kwit creates the order itself (Stripe invoice or checkout session id).
    """

    provider: Provider
    event_key: str
    event_type: str
    kind: EventKind
    provider_payment_id: str | None = None
    # The payment's status as the event reports it: PayNow's status exactly as received (it may
    # be one Kwit does not know), StripePaymentStatus.PAID for a Stripe payment event, else None.
    status: str | None = None
    occurred_at: datetime | None = None
    modified_at: str | None = None  # PayNow modifiedAt exactly as received (no timezone)
    order_ref: str | None = None
    external_ref: str | None = None
    customer_ref: str | None = None
    amount_minor: int | None = None
    currency: str | None = None  # upper-case ISO 4217
    livemode: bool | None = None
    refund_id: str | None = None
    refunded_minor: int | None = None
    billing: Billing | None = field(default=None, repr=False)
    lines: tuple[LineItem, ...] = ()
