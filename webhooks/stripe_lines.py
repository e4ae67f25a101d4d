"""Stripe invoice lines as gross line items that add up to the amount charged, to the grosz.

Stripe reports lines net of exclusive taxes and may round, prorate or credit; the VAT invoice
needs gross unit prices whose quantity times price sums exactly to what the buyer paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from webhooks.errors import PayloadError
from webhooks.events import LineItem
from webhooks.fields import as_dict, optional, require

_POLISH_RATES = (23, 8, 5)


def invoice_lines(invoice: Mapping[str, Any], amount_paid: int) -> tuple[LineItem, ...]:
    """Gross lines whose totals add up to `amount_paid` exactly.

    Each line's gross is `amount - discount_amounts + exclusive taxes`, all integers Stripe has
    already rounded. What still differs from `amount_paid` (customer credit balance, rounding)
    is spread over the lines by `_fit`. A line whose gross does not divide by its quantity is
    split in two, because iFirma multiplies quantity by unit price.
    """
    lines = optional(invoice, "lines", dict, "invoice")
    if not lines or lines.get("has_more") is True:
        # Only the first page of lines is in the webhook; a partial list would misstate the sale.
        return ()
    data = optional(lines, "data", list, "invoice.lines") or []
    raw = [_line(item, i) for i, item in enumerate(data)]
    totals = _fit([gross for _, _, gross, _ in raw], amount_paid)
    items: list[LineItem] = []
    for (name, quantity, _, rate), total in zip(raw, totals, strict=True):
        items.extend(_split_units(name, quantity, total, rate))
    return tuple(items)


def _line(item: Any, index: int) -> tuple[str, int, int, str | None]:
    where = f"invoice.lines.data[{index}]"
    line = as_dict(item, where)
    quantity = optional(line, "quantity", int, where)
    discounts = sum(
        require(as_dict(d, f"{where}.discount_amounts"), "amount", int, f"{where}.discount")
        for d in optional(line, "discount_amounts", list, where) or []
    )
    exclusive_tax, rate = _line_tax(line, where)
    gross = require(line, "amount", int, where) - discounts + exclusive_tax
    name = optional(line, "description", str, where) or "Stripe invoice line"
    return name, quantity if quantity and quantity > 0 else 1, gross, rate


def _line_tax(line: Mapping[str, Any], where: str) -> tuple[int, str | None]:
    """The exclusive tax to add to a line's amount, and its VAT rate when Stripe tells it."""
    taxes = optional(line, "taxes", list, where)
    old_style = taxes is None  # `tax_amounts` before API 2025-03-31
    entries = taxes if taxes is not None else optional(line, "tax_amounts", list, where) or []
    exclusive, rates = 0, set()
    for i, entry in enumerate(entries):
        tax = as_dict(entry, f"{where}.taxes[{i}]")
        amount = require(tax, "amount", int, f"{where}.taxes[{i}]")
        if old_style:
            inclusive = tax.get("inclusive") is True
        else:
            inclusive = tax.get("tax_behavior") == "inclusive"
        exclusive += 0 if inclusive else amount
        rates.add(_tax_rate(tax, amount, f"{where}.taxes[{i}]"))
    # One VAT rate per invoice line; a line taxed at several rates has no single answer.
    return exclusive, rates.pop() if len(rates) == 1 else None


def _tax_rate(tax: Mapping[str, Any], amount: int, where: str) -> str | None:
    details = optional(tax, "tax_rate_details", dict, where) or {}
    expanded = tax.get("tax_rate") if isinstance(tax.get("tax_rate"), dict) else {}
    for source in (details, expanded):
        percentage = source.get("percentage_decimal")
        if percentage is None:
            percentage = source.get("percentage")  # an expanded TaxRate has a number
        if percentage is not None:
            return _percentage(percentage, where)
    if tax.get("taxability_reason") == "reverse_charge":
        return "np"  # EU B2B service, taxed by the buyer: "nie podlega" on a Polish invoice
    taxable = optional(tax, "taxable_amount", int, where)
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
