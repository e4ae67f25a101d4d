"""Stripe webhooks: signature verification and normalisation into a ProviderEvent.

Pure functions, no Flask: the view hands over the raw body, the `Stripe-Signature` header and the
clock. See docs/protocols/stripe.md, signature, for the scheme and the test vectors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stdnum.pl import nip as pl_nip

from models.enums import StripePaymentStatus
from webhooks.errors import PayloadError, SignatureError
from webhooks.events import Billing, EventKind, Provider, ProviderEvent
from webhooks.fields import as_dict, optional, require
from webhooks.stripe_lines import invoice_lines

__all__ = ["DEFAULT_TOLERANCE", "normalise", "sign", "verify"]

DEFAULT_TOLERANCE = 300  # seconds, Stripe's own default

# Unix seconds; the length cap keeps int() cheap on hostile input (10 digits last until 2286).
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


# --- signature ---------------------------------------------------------------------------------


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Return the parsed event once `header` proves that Stripe sent exactly `payload`.

    Checks run header shape → HMAC → timestamp → JSON, so a sender without a valid signature
    learns nothing about the clock or the parser. Any `v1` may match any secret (rotation);
    `v0` is never accepted. Raises SignatureError or PayloadError.
    """
    _check_secrets(secrets)
    if not isinstance(payload, bytes | bytearray):
        # A str here means the body was decoded or re-serialised: its signature cannot be trusted.
        raise TypeError("payload must be the raw request body as bytes")
    timestamp, candidates = _parse_header(header)
    signed = b"%d." % timestamp + bytes(payload)
    expected = [_hex_hmac(secret, signed) for secret in secrets]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("mismatch", "no v1 signature matches a configured secret")
    if now - timestamp > tolerance:
        raise SignatureError("too_old", "signature timestamp is older than the tolerance")
    if timestamp - now > tolerance:
        raise SignatureError("too_new", "signature timestamp is in the future")
    return _parse_object(payload)


def sign(payload: bytes, secret: str, *, timestamp: int) -> str:
    """Build a `Stripe-Signature` header value (`t=…,v1=…`) for `payload`, as Stripe does."""
    signature = _hex_hmac(secret, b"%d." % timestamp + payload).decode("ascii")
    return f"t={timestamp},v1={signature}"


def _hex_hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest().encode("ascii")


def _check_secrets(secrets: Sequence[str]) -> None:
    # A bare str is a Sequence[str] too; iterating it would try each character as a secret.
    if (
        isinstance(secrets, str)
        or not secrets
        or not all(isinstance(s, str) and s for s in secrets)
    ):
        raise ValueError("secrets must be a non-empty list of non-empty strings")


def _parse_header(header: str | None) -> tuple[int, list[bytes]]:
    """Split `t=…,v1=…[,v1=…][,v0=…]` into the timestamp and the v1 signatures."""
    if header is None or not header.strip():
        raise SignatureError("malformed_header", "Stripe-Signature header is missing or empty")
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value.encode("utf-8"))
        # v0 and unknown schemes are skipped: accepting v0 would allow a downgrade.
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError("malformed_header", "Stripe-Signature header has no usable t=")
    if not candidates:
        raise SignatureError("no_signature", "Stripe-Signature header has no v1 signature")
    return int(timestamps[0]), candidates


def _parse_object(payload: bytes) -> dict[str, Any]:
    """Parse a UTF-8 JSON object; anything else is a PayloadError (a 400, never a 500)."""
    try:
        # Decode explicitly: json.loads(bytes) would also guess UTF-16/32, which Stripe never sends.
        data = json.loads(bytes(payload).decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise PayloadError(f"body is not UTF-8 JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- normalisation -----------------------------------------------------------------------------


def normalise(event: Mapping[str, Any]) -> ProviderEvent:
    """Turn a verified Stripe event into a ProviderEvent; unknown types come back IGNORED.

    Raises PayloadError (never KeyError/TypeError) when a field Kwit relies on is missing or has
    the wrong type. Messages name the field, never its value: they end up in logs.
    """
    if not isinstance(event, Mapping):
        raise PayloadError("event is not a JSON object")
    require(event, "id", str, "event")
    require(event, "type", str, "event")
    optional(event, "livemode", bool, "event")
    if event.get("object") == "v2.core.event":
        # Thin events carry no snapshot of the object; Kwit acts on none of them yet.
        return _ignored(event)
    match event["type"]:
        case "invoice.paid":
            return _invoice_paid(event)
        case "checkout.session.completed":
            return _checkout_session_completed(event)
        case "payment_intent.succeeded":
            return _payment_intent_succeeded(event)
        case "charge.refunded":
            return _charge_refunded(event)
        case _:
            return _ignored(event)


def _event(event: Mapping[str, Any], kind: EventKind, **fields: Any) -> ProviderEvent:
    return ProviderEvent(
        provider=Provider.STRIPE,
        event_key=event["id"],
        event_type=event["type"],
        kind=kind,
        livemode=event.get("livemode"),
        **fields,
    )


def _ignored(event: Mapping[str, Any]) -> ProviderEvent:
    return _event(event, EventKind.IGNORED)


def _invoice_paid(event: Mapping[str, Any]) -> ProviderEvent:
    """A Stripe Billing invoice was paid: enough to create the order, its lines and billing."""
    invoice = _data_object(event)
    invoice_id = require(invoice, "id", str, "invoice")
    amount = _amount(invoice, "amount_paid", "invoice")
    transitions = optional(invoice, "status_transitions", dict, "invoice") or {}
    paid_at = optional(transitions, "paid_at", int, "invoice.status_transitions")
    return _event(
        event,
        EventKind.PAID,
        status=StripePaymentStatus.PAID,
        provider_payment_id=_invoice_payment_intent(invoice) or invoice_id,
        occurred_at=_datetime(paid_at) or _created(event),
        order_ref=_kwit_order(invoice, "invoice"),
        external_ref=invoice_id,
        customer_ref=_optional_id(invoice, "customer", "invoice"),
        amount_minor=amount,
        currency=_currency(invoice, "invoice"),
        billing=_billing(
            optional(invoice, "customer_name", str, "invoice"),
            optional(invoice, "customer_email", str, "invoice"),
            optional(invoice, "customer_address", dict, "invoice"),
            optional(invoice, "customer_tax_ids", list, "invoice"),
            "invoice",
        ),
        lines=invoice_lines(invoice, amount),
    )


def _invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The invoice's PaymentIntent: top-level before API 2025-03-31, else under `payments`."""
    found = _optional_id(invoice, "payment_intent", "invoice")
    payments = optional(invoice, "payments", dict, "invoice") or {}
    for i, entry in enumerate(optional(payments, "data", list, "invoice.payments") or []):
        if found:
            break
        where = f"invoice.payments.data[{i}]"
        payment = optional(as_dict(entry, where), "payment", dict, where) or {}
        found = _optional_id(payment, "payment_intent", f"{where}.payment")
    return found


def _checkout_session_completed(event: Mapping[str, Any]) -> ProviderEvent:
    """A Checkout session finished; only `payment_status == "paid"` means money arrived."""
    session = _data_object(event)
    session_id = require(session, "id", str, "session")
    payment_status = optional(session, "payment_status", str, "session")
    if payment_status != "paid":  # "unpaid" (async methods) or "no_payment_required"
        return _event(event, EventKind.IGNORED, external_ref=session_id)
    # A subscription-mode session is followed by invoice.paid for the same money: point both at
    # the Stripe invoice so they land on one order (and one VAT invoice), not two.
    invoice_id = _optional_id(session, "invoice", "session")
    payment_intent = _optional_id(session, "payment_intent", "session")
    reference = optional(session, "client_reference_id", str, "session")
    details = optional(session, "customer_details", dict, "session") or {}
    where = "session.customer_details"
    return _event(
        event,
        EventKind.PAID,
        status=StripePaymentStatus.PAID,
        provider_payment_id=payment_intent or invoice_id or session_id,
        occurred_at=_created(event),
        order_ref=_kwit_order(session, "session") or reference or None,
        external_ref=invoice_id or session_id,
        customer_ref=_optional_id(session, "customer", "session"),
        amount_minor=_amount(session, "amount_total", "session"),
        currency=_currency(session, "session"),
        billing=_billing(
            optional(details, "name", str, where),
            optional(details, "email", str, where),
            optional(details, "address", dict, where),
            optional(details, "tax_ids", list, where),
            where,
        ),
    )


def _payment_intent_succeeded(event: Mapping[str, Any]) -> ProviderEvent:
    """A PaymentIntent succeeded; it links to a Kwit order only through metadata.kwit_order."""
    intent = _data_object(event)
    return _event(
        event,
        EventKind.PAID,
        status=StripePaymentStatus.PAID,
        provider_payment_id=require(intent, "id", str, "payment_intent"),
        occurred_at=_created(event),
        order_ref=_kwit_order(intent, "payment_intent"),
        customer_ref=_optional_id(intent, "customer", "payment_intent"),
        amount_minor=_amount(intent, "amount_received", "payment_intent"),
        currency=_currency(intent, "payment_intent"),
    )


def _charge_refunded(event: Mapping[str, Any]) -> ProviderEvent:
    """Money went back. `amount_refunded` is cumulative over all refunds of the charge."""
    charge = _data_object(event)
    charge_id = require(charge, "id", str, "charge")
    refunds = optional(charge, "refunds", dict, "charge") or {}
    refund_list = optional(refunds, "data", list, "charge.refunds") or []
    refund_id = None
    if refund_list:  # Stripe lists the newest refund first
        refund_id = require(as_dict(refund_list[0], "charge.refunds.data[0]"), "id", str, "refund")
    return _event(
        event,
        EventKind.REFUNDED,
        # A charge made without a PaymentIntent (legacy Charges API) is its own payment.
        provider_payment_id=_optional_id(charge, "payment_intent", "charge") or charge_id,
        occurred_at=_created(event),
        order_ref=_kwit_order(charge, "charge"),
        customer_ref=_optional_id(charge, "customer", "charge"),
        amount_minor=optional(charge, "amount", int, "charge"),
        currency=_currency(charge, "charge"),
        refund_id=refund_id,
        refunded_minor=_amount(charge, "amount_refunded", "charge"),
    )


# --- invoice lines -----------------------------------------------------------------------------


def _billing(
    name: str | None,
    email: str | None,
    address: Mapping[str, Any] | None,
    tax_ids: list[Any] | None,
    where: str,
) -> Billing | None:
    """Buyer data for the invoice; None without a name, because an invoice cannot go without."""
    if not name or not name.strip():
        return None
    nip, other = _tax_ids(tax_ids or [], where)
    address = address or {}
    field = {k: optional(address, k, str, f"{where}.address") or None for k in _ADDRESS_FIELDS}
    country = field.pop("country")
    return Billing(
        name=name.strip(),
        email=email or None,
        nip=nip,
        tax_id=other,
        country=country.upper() if country else None,
        **field,
    )


_ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "country")


def _tax_ids(items: list[Any], where: str) -> tuple[str | None, str | None]:
    """The first valid Polish NIP (eu_vat PL…, pl_nip) and the first other tax id, as given."""
    nip = other = None
    for i, entry in enumerate(items):
        item = as_dict(entry, f"{where}.tax_ids[{i}]")
        kind = optional(item, "type", str, f"{where}.tax_ids[{i}]")
        value = optional(item, "value", str, f"{where}.tax_ids[{i}]")
        if not value:
            continue
        polish = _polish_nip(kind, value)
        if polish and nip is None:
            nip = polish
        elif not polish and other is None:
            other = value  # includes a malformed Polish NIP: kept as given, never dropped
    return nip, other


def _polish_nip(kind: str | None, value: str) -> str | None:
    if kind == "pl_nip" or (kind == "eu_vat" and value.strip().upper().startswith("PL")):
        digits = pl_nip.compact(value)  # drops the PL prefix, spaces and dashes
        return digits if pl_nip.is_valid(digits) else None
    return None


# --- field access ------------------------------------------------------------------------------


def _data_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = require(event, "data", dict, "event")
    return require(data, "object", dict, "event.data")


def _optional_id(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """An id field that API callers may have expanded into the whole object."""
    value = obj.get(key)
    if isinstance(value, Mapping):
        return require(value, "id", str, f"{where}.{key}")
    return optional(obj, key, str, where) or None


def _kwit_order(obj: Mapping[str, Any], where: str) -> str | None:
    metadata = optional(obj, "metadata", dict, where) or {}
    return optional(metadata, "kwit_order", str, f"{where}.metadata") or None


def _amount(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = require(obj, key, int, where)
    if value < 0:
        raise PayloadError(f"{where}.{key} is negative")
    return value


def _currency(obj: Mapping[str, Any], where: str) -> str:
    value = require(obj, "currency", str, where)
    if not _CURRENCY.fullmatch(value):
        raise PayloadError(f"{where}.currency is not an ISO 4217 code")
    return value.upper()


def _created(event: Mapping[str, Any]) -> datetime | None:
    return _datetime(optional(event, "created", int, "event"))


def _datetime(seconds: int | None) -> datetime | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError("timestamp is out of range") from exc
