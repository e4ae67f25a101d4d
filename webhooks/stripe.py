"""Stripe webhooks: signature verification and normalisation into a ProviderEvent.

Pure functions, no Flask: the view hands over the raw body, the `Stripe-Signature` header and the
clock. See shared/protocols/stripe.md for the scheme and the test vectors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from stdnum.pl import nip as pl_nip

from webhooks.errors import PayloadError, SignatureError
from webhooks.events import Billing, EventKind, LineItem, Provider, ProviderEvent

__all__ = ["DEFAULT_TOLERANCE", "normalise", "sign", "verify"]

DEFAULT_TOLERANCE = 300  # seconds, Stripe's own default

# Unix seconds; the length cap keeps int() cheap on hostile input (10 digits last until 2286).
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_POLISH_RATES = (23, 8, 5)

T = TypeVar("T")


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
    _require(event, "id", str, "event")
    _require(event, "type", str, "event")
    _optional(event, "livemode", bool, "event")
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
    invoice_id = _require(invoice, "id", str, "invoice")
    amount = _amount(invoice, "amount_paid", "invoice")
    transitions = _optional(invoice, "status_transitions", dict, "invoice") or {}
    paid_at = _optional(transitions, "paid_at", int, "invoice.status_transitions")
    return _event(
        event,
        EventKind.PAID,
        status="paid",
        provider_payment_id=_invoice_payment_intent(invoice) or invoice_id,
        occurred_at=_datetime(paid_at) or _created(event),
        order_ref=_kwit_order(invoice, "invoice"),
        external_ref=invoice_id,
        customer_ref=_optional_id(invoice, "customer", "invoice"),
        amount_minor=amount,
        currency=_currency(invoice, "invoice"),
        billing=_billing(
            _optional(invoice, "customer_name", str, "invoice"),
            _optional(invoice, "customer_email", str, "invoice"),
            _optional(invoice, "customer_address", dict, "invoice"),
            _optional(invoice, "customer_tax_ids", list, "invoice"),
            "invoice",
        ),
        lines=_invoice_lines(invoice, amount),
    )


def _invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The invoice's PaymentIntent: top-level before API 2025-03-31, else under `payments`."""
    found = _optional_id(invoice, "payment_intent", "invoice")
    payments = _optional(invoice, "payments", dict, "invoice") or {}
    for i, entry in enumerate(_optional(payments, "data", list, "invoice.payments") or []):
        if found:
            break
        where = f"invoice.payments.data[{i}]"
        payment = _optional(_as_dict(entry, where), "payment", dict, where) or {}
        found = _optional_id(payment, "payment_intent", f"{where}.payment")
    return found


def _checkout_session_completed(event: Mapping[str, Any]) -> ProviderEvent:
    """A Checkout session finished; only `payment_status == "paid"` means money arrived."""
    session = _data_object(event)
    session_id = _require(session, "id", str, "session")
    payment_status = _optional(session, "payment_status", str, "session")
    if payment_status != "paid":  # "unpaid" (async methods) or "no_payment_required"
        return _event(event, EventKind.IGNORED, status=payment_status, external_ref=session_id)
    # A subscription-mode session is followed by invoice.paid for the same money: point both at
    # the Stripe invoice so they land on one order (and one VAT invoice), not two.
    invoice_id = _optional_id(session, "invoice", "session")
    payment_intent = _optional_id(session, "payment_intent", "session")
    reference = _optional(session, "client_reference_id", str, "session")
    details = _optional(session, "customer_details", dict, "session") or {}
    where = "session.customer_details"
    return _event(
        event,
        EventKind.PAID,
        status="paid",
        provider_payment_id=payment_intent or invoice_id or session_id,
        occurred_at=_created(event),
        order_ref=_kwit_order(session, "session") or reference or None,
        external_ref=invoice_id or session_id,
        customer_ref=_optional_id(session, "customer", "session"),
        amount_minor=_amount(session, "amount_total", "session"),
        currency=_currency(session, "session"),
        billing=_billing(
            _optional(details, "name", str, where),
            _optional(details, "email", str, where),
            _optional(details, "address", dict, where),
            _optional(details, "tax_ids", list, where),
            where,
        ),
    )


def _payment_intent_succeeded(event: Mapping[str, Any]) -> ProviderEvent:
    """A PaymentIntent succeeded; it links to a Kwit order only through metadata.kwit_order."""
    intent = _data_object(event)
    return _event(
        event,
        EventKind.PAID,
        status="paid",
        provider_payment_id=_require(intent, "id", str, "payment_intent"),
        occurred_at=_created(event),
        order_ref=_kwit_order(intent, "payment_intent"),
        customer_ref=_optional_id(intent, "customer", "payment_intent"),
        amount_minor=_amount(intent, "amount_received", "payment_intent"),
        currency=_currency(intent, "payment_intent"),
    )


def _charge_refunded(event: Mapping[str, Any]) -> ProviderEvent:
    """Money went back. `amount_refunded` is cumulative over all refunds of the charge."""
    charge = _data_object(event)
    charge_id = _require(charge, "id", str, "charge")
    refunds = _optional(charge, "refunds", dict, "charge") or {}
    refund_list = _optional(refunds, "data", list, "charge.refunds") or []
    refund_id = None
    if refund_list:  # Stripe lists the newest refund first
        refund_id = _require(
            _as_dict(refund_list[0], "charge.refunds.data[0]"), "id", str, "refund"
        )
    return _event(
        event,
        EventKind.REFUNDED,
        status="refunded",
        # A charge made without a PaymentIntent (legacy Charges API) is its own payment.
        provider_payment_id=_optional_id(charge, "payment_intent", "charge") or charge_id,
        occurred_at=_created(event),
        order_ref=_kwit_order(charge, "charge"),
        customer_ref=_optional_id(charge, "customer", "charge"),
        amount_minor=_optional(charge, "amount", int, "charge"),
        currency=_currency(charge, "charge"),
        refund_id=refund_id,
        refunded_minor=_amount(charge, "amount_refunded", "charge"),
    )


# --- invoice lines -----------------------------------------------------------------------------


def _invoice_lines(invoice: Mapping[str, Any], amount_paid: int) -> tuple[LineItem, ...]:
    """Gross lines whose totals add up to `amount_paid` exactly.

    Each line's gross is `amount - discount_amounts + exclusive taxes`, all integers Stripe has
    already rounded. What still differs from `amount_paid` (customer credit balance, rounding)
    is spread over the lines by `_fit`. A line whose gross does not divide by its quantity is
    split in two, because iFirma multiplies quantity by unit price.
    """
    lines = _optional(invoice, "lines", dict, "invoice")
    if not lines or lines.get("has_more") is True:
        # Only the first page of lines is in the webhook; a partial list would misstate the sale.
        return ()
    data = _optional(lines, "data", list, "invoice.lines") or []
    raw = [_line(item, i) for i, item in enumerate(data)]
    totals = _fit([gross for _, _, gross, _ in raw], amount_paid)
    items: list[LineItem] = []
    for (name, quantity, _, rate), total in zip(raw, totals, strict=True):
        items.extend(_split_units(name, quantity, total, rate))
    return tuple(items)


def _line(item: Any, index: int) -> tuple[str, int, int, str | None]:
    where = f"invoice.lines.data[{index}]"
    line = _as_dict(item, where)
    quantity = _optional(line, "quantity", int, where)
    discounts = sum(
        _require(_as_dict(d, f"{where}.discount_amounts"), "amount", int, f"{where}.discount")
        for d in _optional(line, "discount_amounts", list, where) or []
    )
    exclusive_tax, rate = _line_tax(line, where)
    gross = _require(line, "amount", int, where) - discounts + exclusive_tax
    name = _optional(line, "description", str, where) or "Stripe invoice line"
    return name, quantity if quantity and quantity > 0 else 1, gross, rate


def _line_tax(line: Mapping[str, Any], where: str) -> tuple[int, str | None]:
    """The exclusive tax to add to a line's amount, and its VAT rate when Stripe tells it."""
    taxes = _optional(line, "taxes", list, where)
    old_style = taxes is None  # `tax_amounts` before API 2025-03-31
    entries = taxes if taxes is not None else _optional(line, "tax_amounts", list, where) or []
    exclusive, rates = 0, set()
    for i, entry in enumerate(entries):
        tax = _as_dict(entry, f"{where}.taxes[{i}]")
        amount = _require(tax, "amount", int, f"{where}.taxes[{i}]")
        if old_style:
            inclusive = tax.get("inclusive") is True
        else:
            inclusive = tax.get("tax_behavior") == "inclusive"
        exclusive += 0 if inclusive else amount
        rates.add(_tax_rate(tax, amount, f"{where}.taxes[{i}]"))
    # One VAT rate per invoice line; a line taxed at several rates has no single answer.
    return exclusive, rates.pop() if len(rates) == 1 else None


def _tax_rate(tax: Mapping[str, Any], amount: int, where: str) -> str | None:
    details = _optional(tax, "tax_rate_details", dict, where) or {}
    expanded = tax.get("tax_rate") if isinstance(tax.get("tax_rate"), dict) else {}
    for source in (details, expanded):
        percentage = source.get("percentage_decimal")
        if percentage is None:
            percentage = source.get("percentage")  # an expanded TaxRate has a number
        if percentage is not None:
            return _percentage(percentage, where)
    if tax.get("taxability_reason") == "reverse_charge":
        return "np"  # EU B2B service, taxed by the buyer: "nie podlega" on a Polish invoice
    taxable = _optional(tax, "taxable_amount", int, where)
    if taxable and amount > 0:
        # Rate not given: accept it only when exactly one Polish rate reproduces the amount.
        fits = [r for r in _POLISH_RATES if abs(amount * 100 - taxable * r) <= 50]
        return str(fits[0]) if len(fits) == 1 else None
    return None


def _percentage(value: Any, where: str) -> str:
    """ "23.0" or 23.0 → "23"; "7.5" stays "7.5"."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(f"{where} percentage has the wrong type")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"{where} percentage is not a number") from exc
    if not number.is_finite() or number < 0:
        raise PayloadError(f"{where} percentage is out of range")
    return format(number.normalize(), "f")


def _fit(totals: list[int], target: int) -> list[int]:
    """Adjust line totals so that they add up to `target` exactly (integer minor units).

    Non-negative lines are scaled in proportion and the few leftover units go to the largest
    remainders (ties to the later line). Lines of mixed sign (prorations) cannot be scaled
    meaningfully, so there the last line absorbs the whole difference.
    """
    current = sum(totals)
    if current == target or not totals:
        return totals
    if current > 0 and min(totals) >= 0:
        shares = [t * target // current for t in totals]
        remainders = [t * target % current for t in totals]
        order = sorted(range(len(totals)), key=lambda i: (remainders[i], i), reverse=True)
        for i in order[: target - sum(shares)]:
            shares[i] += 1
        return shares
    return [*totals[:-1], totals[-1] + target - current]


def _split_units(name: str, quantity: int, total: int, rate: str | None) -> list[LineItem]:
    unit, rest = divmod(total, quantity)
    if rest == 0:
        return [LineItem(name, quantity, unit, rate)]
    # qty * unit must equal the total, so 3 units for 100.00 become 2 * 33.33 + 1 * 33.34.
    return [LineItem(name, quantity - rest, unit, rate), LineItem(name, rest, unit + 1, rate)]


# --- billing -----------------------------------------------------------------------------------


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
    field = {k: _optional(address, k, str, f"{where}.address") or None for k in _ADDRESS_FIELDS}
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
        item = _as_dict(entry, f"{where}.tax_ids[{i}]")
        kind = _optional(item, "type", str, f"{where}.tax_ids[{i}]")
        value = _optional(item, "value", str, f"{where}.tax_ids[{i}]")
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


def _optional(obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T | None:
    """`obj[key]` if present and not null, checked against `kind` (bool never passes for int)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PayloadError(f"{where}.{key} has the wrong type")
    return value


def _require(obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    value = _optional(obj, key, kind, where)
    if value is None or value == "":
        raise PayloadError(f"{where}.{key} is missing")
    return value


def _as_dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where} is not an object")
    return value


def _data_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = _require(event, "data", dict, "event")
    return _require(data, "object", dict, "event.data")


def _optional_id(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """An id field that API callers may have expanded into the whole object."""
    value = obj.get(key)
    if isinstance(value, Mapping):
        return _require(value, "id", str, f"{where}.{key}")
    return _optional(obj, key, str, where) or None


def _kwit_order(obj: Mapping[str, Any], where: str) -> str | None:
    metadata = _optional(obj, "metadata", dict, where) or {}
    return _optional(metadata, "kwit_order", str, f"{where}.metadata") or None


def _amount(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = _require(obj, key, int, where)
    if value < 0:
        raise PayloadError(f"{where}.{key} is negative")
    return value


def _currency(obj: Mapping[str, Any], where: str) -> str:
    value = _require(obj, "currency", str, where)
    if not _CURRENCY.fullmatch(value):
        raise PayloadError(f"{where}.currency is not an ISO 4217 code")
    return value.upper()


def _created(event: Mapping[str, Any]) -> datetime | None:
    return _datetime(_optional(event, "created", int, "event"))


def _datetime(seconds: int | None) -> datetime | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError("timestamp is out of range") from exc
