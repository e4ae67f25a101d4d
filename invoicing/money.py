"""Money helpers: integer minor units (grosze) and 2-dp Decimals, never float arithmetic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "CENT",
    "dumps",
    "from_minor",
    "round_half_up",
    "split_gross",
    "to_minor",
]

CENT = Decimal("0.01")


def from_minor(minor: int) -> Decimal:
    """Integer grosze → Decimal with exactly two decimals (12345 → Decimal('123.45'))."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be int, got {type(minor).__name__}")
    return (Decimal(minor) / 100).quantize(CENT)


def to_minor(amount: Decimal | int | str | float) -> int:
    """Decimal (or a JSON number) → integer grosze; refuses sub-grosz precision.

    Floats are accepted only because some JSON parsers hand them over; they go through
    ``str()`` (shortest round-trip repr) so no binary artefact leaks into the amount.
    """
    value = Decimal(str(amount)) if isinstance(amount, float) else Decimal(amount)
    minor = value * 100
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {amount!r} has more than 2 decimal places")
    return int(minor)


def round_half_up(value: Decimal) -> Decimal:
    """Round to whole grosze, half away from zero (what Polish invoicing software does)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def split_gross(gross_minor: int, rate: Decimal) -> tuple[int, int]:
    """Split a gross amount into (net, vat) minor units for a rate like Decimal('0.23').

    VAT = round_half_up(gross x rate / (1 + rate)); net = gross - VAT, so net + VAT is
    always exactly the gross that was charged.
    """
    if rate == 0:
        return gross_minor, 0
    vat = round_half_up(from_minor(gross_minor) * rate / (1 + rate))
    vat_minor = to_minor(vat)
    return gross_minor - vat_minor, vat_minor


def _encode(obj: Any) -> str:
    # Hand-rolled because the stdlib encoder cannot emit a Decimal as a JSON number.
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError("non-finite Decimal in JSON body")
        return format(obj, "f")
    if isinstance(obj, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}: {_encode(v)}" for k, v in obj.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ", ".join(_encode(v) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def dumps(obj: Any) -> bytes:
    """Serialise to UTF-8 JSON bytes; Decimals become plain numbers (Decimal('123.00') → 123.00).

    Separators match ``json.dumps`` defaults, so ``dumps({"DataWysylki": None})`` is
    ``b'{"DataWysylki": null}'``. Parse back with ``json.loads(b, parse_float=Decimal)``.
    """
    return _encode(obj).encode("utf-8")
