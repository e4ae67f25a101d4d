"""Statute date arithmetic: end of year + N, VAT deadlines, limitation periods, rolling windows.

Pure functions, one per statutory rule, checked against the worked examples of
docs/retention-law.md §8. The retention engine (``compliance.retention``) picks which of them
apply to a record; this module only knows the calendar.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "add_months",
    "day_of",
    "de_retain",
    "eoy",
    "fiscal_year_end",
    "month_end",
    "pl_acct_retain",
    "pl_civil_retain",
    "pl_income_retain",
    "pl_vat_deadline",
    "pl_vat_retain",
    "rolling",
]


def eoy(year: int) -> date:
    """31 December of ``year``: Polish and German periods end on the last day of a year."""
    return date(year, 12, 31)


def add_months(d: date, months: int) -> date:
    """``d`` moved by ``months`` calendar months, clamped to the last day of the target month."""
    y, m = d.year + (d.month - 1 + months) // 12, (d.month - 1 + months) % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def month_end(d: date) -> date:
    """Last day of the month containing ``d``."""
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def day_of(value: date | datetime) -> date:
    """Calendar day of a date or timestamp (aware timestamps are taken in UTC)."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return value


def pl_vat_deadline(tax_point: date, quarterly: bool = False) -> date:
    """VAT payment deadline: 25th of the month after the settlement period (VAT art. 103)."""
    # The Tax Ordinance art. 12 §5 weekend/holiday shift never changes the year, so it is
    # ignored (docs/retention-law.md §2.1).
    end_month = ((tax_point.month - 1) // 3 + 1) * 3 if quarterly else tax_point.month
    nxt = add_months(date(tax_point.year, end_month, 1), 1)
    return date(nxt.year, nxt.month, 25)


def pl_vat_retain(tax_point: date, quarterly: bool = False) -> date:
    """VAT art. 112 + OP art. 70 §1: 5 years from the end of the year of the VAT deadline."""
    return eoy(pl_vat_deadline(tax_point, quarterly).year + 5)


def pl_income_retain(tax_year_end: date, regime: str = "CIT") -> date:
    """OP art. 86 §1 + art. 70 §1: 5 years from the end of the year of the annual deadline."""
    if regime == "CIT":  # CIT art. 27 ust. 1: end of the 3rd month after the tax year
        deadline = month_end(add_months(date(tax_year_end.year, tax_year_end.month, 1), 3))
    elif regime == "PIT":  # PIT art. 45 ust. 1: 30 April of the next year
        deadline = date(tax_year_end.year + 1, 4, 30)
    else:
        raise ValueError(f"unknown tax regime {regime!r}; expected 'CIT' or 'PIT'")
    return eoy(deadline.year + 5)


def pl_acct_retain(fy_end: date) -> date:
    """Accounting Act art. 74 ust. 2 pkt 8 + ust. 3: 5 years from the start of the next year."""
    return eoy(fy_end.year + 5)


def pl_civil_retain(anchor: date, consumer: bool) -> date:
    """Civil Code art. 118: 6 years (consumer claims) / 3 years (business), ending 31 Dec."""
    return eoy(anchor.year + (6 if consumer else 3))


def rolling(ts: date | datetime, days: int) -> date:
    """Rolling period for logs: the timestamp's day plus ``days`` days."""
    return day_of(ts) + timedelta(days=days)


def fiscal_year_end(day: date, end_month: int = 12) -> date:
    """Last day of the fiscal (or CIT tax) year containing ``day``."""
    year = day.year if day.month <= end_month else day.year + 1
    return month_end(date(year, end_month, 1))


# Art. 97 §19a Abs. 2 EGAO: the 8-year rule covers every document whose old 10-year period had
# not expired by the end of 2024, so documents from 2015 onwards (docs/retention-law.md §3).
_DE_OLD_RULE_EXPIRED_BEFORE = date(2025, 1, 1)


def de_retain(doc_date: date) -> date:
    """§147 Abs. 3/4 AO, §14b UStG: 8 years from the end of the year (10 before 2015 docs)."""
    old = eoy(doc_date.year + 10)
    return old if old < _DE_OLD_RULE_EXPIRED_BEFORE else eoy(doc_date.year + 8)
