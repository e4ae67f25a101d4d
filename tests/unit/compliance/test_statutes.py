"""Statute date arithmetic: VAT deadlines, limitation periods, fiscal years, rolling windows."""

from datetime import date, datetime, timedelta, timezone

import pytest

from compliance.statutes import (
    eoy,
    fiscal_year_end,
    pl_acct_retain,
    pl_civil_retain,
    pl_income_retain,
    pl_vat_deadline,
    pl_vat_retain,
    rolling,
)

D = date


def test_check_run_values_of_5a():
    # The check run of the research notes behind docs/retention-law.md §2.1-§2.3.
    assert pl_vat_deadline(D(2026, 12, 15)) == D(2027, 1, 25)
    assert pl_vat_retain(D(2026, 12, 15)) == D(2032, 12, 31)
    assert pl_vat_retain(D(2026, 6, 10)) == D(2031, 12, 31)
    assert pl_income_retain(D(2026, 12, 31)) == D(2032, 12, 31)
    assert pl_acct_retain(D(2026, 12, 31)) == D(2031, 12, 31)
    assert pl_vat_deadline(D(2026, 11, 3), quarterly=True) == D(2027, 1, 25)
    assert pl_vat_retain(D(2026, 11, 3), quarterly=True) == D(2032, 12, 31)
    assert pl_vat_retain(D(2026, 9, 30), quarterly=True) == D(2031, 12, 31)
    assert pl_income_retain(D(2027, 6, 30)) == D(2032, 12, 31)


def test_vat_deadline_is_25th_of_month_after_period():
    assert pl_vat_deadline(D(2026, 6, 10)) == D(2026, 7, 25)
    assert pl_vat_deadline(D(2026, 1, 31)) == D(2026, 2, 25)
    assert pl_vat_deadline(D(2026, 2, 10), quarterly=True) == D(2026, 4, 25)


def test_pit_deadline_is_30_april_next_year():
    assert pl_income_retain(D(2026, 12, 31), "PIT") == D(2032, 12, 31)
    with pytest.raises(ValueError, match="tax regime"):
        pl_income_retain(D(2026, 12, 31), "VAT")


def test_civil_rule_counts_whole_years_to_31_december():
    assert pl_civil_retain(D(2028, 8, 20), consumer=True) == D(2034, 12, 31)
    assert pl_civil_retain(D(2028, 1, 1), consumer=False) == D(2031, 12, 31)
    assert eoy(2030) == D(2030, 12, 31)


def test_fiscal_year_end_for_calendar_and_june_years():
    assert fiscal_year_end(D(2026, 6, 10)) == D(2026, 12, 31)
    assert fiscal_year_end(D(2026, 8, 10), 6) == D(2027, 6, 30)
    assert fiscal_year_end(D(2027, 6, 30), 6) == D(2027, 6, 30)
    assert fiscal_year_end(D(2027, 1, 15), 2) == D(2027, 2, 28)


def test_rolling_accepts_dates_and_aware_timestamps_in_utc():
    assert rolling(D(2026, 11, 23), 90) == D(2027, 2, 21)
    warsaw_midnight = datetime(2026, 11, 24, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert rolling(warsaw_midnight, 0) == D(2026, 11, 23)
