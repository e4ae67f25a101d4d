"""Pure builder for iFirma refund corrections (``fakturakraj/korekta/{id}.json``).

The facts are in docs/protocols/ifirma.md (correction invoices). A correction is built from the
original invoice as iFirma returns it (Kwit erases its own copy at issue) and states the
"should be" positions; amounts are exact to the grosz, like the sale invoice's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from invoicing.money import from_minor, to_minor
from invoicing.payload import VAT_RATES, WARSAW, PayloadError, RateTotals, rate_totals, warsaw_date

__all__ = ["CORRECTION_REASONS", "BuiltCorrection", "build_correction"]

CORRECTION_REASONS = {"OBOW_RABAT", "ZWR_SPRZ_TOW", "ZWR_NAB_KWOT", "ZWR_NAB_ZAL", "PODW_CENY",
                      "POMYLKI"}  # fmt: skip


@dataclass(frozen=True)
class BuiltCorrection:
    """A ``fakturakraj/korekta/{id}.json`` body; ``totals`` is the "should be" state."""

    payload: dict[str, Any]
    totals: dict[str, RateTotals]
    difference: dict[str, RateTotals]
    issue_date: date
    marker: str


def _rate_of(item: Mapping[str, Any]) -> str:
    kind = item.get("TypStawkiVat")
    if kind in ("ZW", "NP"):
        return kind.lower()
    stawka = Decimal(str(item.get("StawkaVat")))
    for rate, fraction in VAT_RATES.items():
        if fraction is not None and fraction == stawka:
            return rate
    raise PayloadError(f"original position has an unknown VAT rate {item.get('StawkaVat')!r}")


def _whole(value: Any) -> int:
    quantity = Decimal(str(value))
    if quantity <= 0 or quantity != quantity.to_integral_value():
        raise PayloadError(f"original position has a non-integer quantity {value!r}")
    return int(quantity)


def _allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` proportionally to `weights` (largest remainder; ties go to earlier lines)."""
    total = sum(weights)
    shares = [amount * w // total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def build_correction(
    *,
    original_payload: Mapping[str, Any],
    order_id: str,
    refund_ref: str,
    refund_minor: int,
    refunded_at: datetime,
    issue_date: date | None = None,
    reason: str = "ZWR_NAB_KWOT",
) -> BuiltCorrection:
    """Build a refund correction for an invoice made by :func:`build_invoice`.

    Positions describe the "should be" state. A full refund sends every position with
    ``Ilosc: 0``. A partial refund is spread over the positions in proportion to their gross
    (largest remainder); a position keeps its quantity when the reduced gross divides evenly,
    otherwise it becomes ``1 x`` the reduced line gross so the value stays exact to the grosz.
    ``SpelnionoWarunki`` is true: the refund itself documents the agreed reduction.
    """
    if reason not in CORRECTION_REASONS:
        raise PayloadError(f"unknown correction reason {reason!r}")
    if original_payload.get("LiczOd") != "BRT":
        raise PayloadError("only gross-priced (BRT) invoices can be corrected by this builder")
    positions = original_payload["Pozycje"]
    qty = [_whole(p["Ilosc"]) for p in positions]
    price = [to_minor(p["CenaJednostkowa"]) for p in positions]
    gross = [q * c for q, c in zip(qty, price, strict=True)]
    if not 0 < refund_minor <= sum(gross):
        raise PayloadError(f"refund {refund_minor} must be >0 and ≤ invoice gross {sum(gross)}")
    refund_day = warsaw_date(refunded_at, "refunded_at")
    issue_date = issue_date or datetime.now(WARSAW).date()
    original_issue = date.fromisoformat(original_payload["DataWystawienia"])
    if issue_date < max(refund_day, original_issue):
        raise PayloadError(f"correction date {issue_date} is before the refund or the invoice")
    items, should_be, before = [], [], []
    cuts = _allocate(refund_minor, gross)
    for p, q, c, g, cut in zip(positions, qty, price, gross, cuts, strict=True):
        rate, left = _rate_of(p), g - cut
        new_q, new_c = (0, c) if left == 0 else (q, left // q) if left % q == 0 else (1, left)
        item = {k: v for k, v in p.items() if k not in ("Ilosc", "CenaJednostkowa")}
        items.append({**item, "Ilosc": new_q, "CenaJednostkowa": from_minor(new_c)})
        should_be.append((rate, left))
        before.append((rate, g))
    totals, old = rate_totals(should_be), rate_totals(before)
    difference = {
        r: RateTotals(
            totals[r].net_minor - o.net_minor,
            totals[r].vat_minor - o.vat_minor,
            totals[r].gross_minor - o.gross_minor,
        )
        for r, o in old.items()
    }
    # Deliberately not containing marker_for(order_id): reconciling the sale invoice must
    # never mistake this correction for it.
    marker = f"Kwit refund {refund_ref} for order {order_id}"
    payload = {
        "PowodKorekty": reason,
        "PowodKorektyNaWydruku": True,
        "SpelnionoWarunki": True,
        "DataWystawienia": issue_date.isoformat(),
        "Uwagi": marker,  # unverified on corrections (docs/protocols/ifirma.md); used to reconcile
        "Pozycje": items,
    }
    return BuiltCorrection(payload, totals, difference, issue_date, marker)
