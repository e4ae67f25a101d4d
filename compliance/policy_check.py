"""A tenant policy may only lengthen statutory periods: the check, by sampling record dates.

"Shorter" is checked by sampling, not by comparing parameters. The statutory result is computed
on the first and last day of every month of 2026 plus 2028-02-29 (consumer and business), for
the engine's own configuration. These dates cover every settlement-period, quarter and
fiscal-year case, and a ``days`` rule is at its shortest on the 1st. A policy rule that is
shorter on any sample raises ``PolicyError``. Log kinds are exempt: no statute sets a minimum
for them (docs/retention-law.md §6), so a policy replaces their default.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from compliance.basis_codes import RULES
from compliance.policy import REPLACEABLE_KINDS, PolicyError
from compliance.statutes import month_end

if TYPE_CHECKING:
    from compliance.retention import Retention, RetentionEngine

__all__ = ["SAMPLE_DAYS", "check_policy"]

SAMPLE_DAYS = (
    *(d for m in range(1, 13) for d in (date(2026, m, 1), month_end(date(2026, m, 1)))),
    date(2028, 2, 29),
)


def check_policy(engine: RetentionEngine) -> None:
    """Reject a policy rule of ``engine`` that is shorter than the statutory result anywhere."""
    base = engine.without_policy()
    for rule in engine.policy.rules:
        if rule.kind in REPLACEABLE_KINDS:
            continue
        worst: tuple[int, date, Retention] | None = None
        for day in SAMPLE_DAYS:
            for stat in _statutory_samples(base, rule.kind, day):
                gap = (stat.until - rule.until(day)).days
                if gap > 0 and (worst is None or gap > worst[0]):
                    worst = (gap, day, stat)
        if worst is not None:
            _, day, stat = worst
            first = next(c.code for c in stat.candidates if c.until == stat.until)
            raise PolicyError(
                f"policy for {rule.kind!r} ({rule.period}) is shorter than the statutory "
                f"minimum {stat.code} ({RULES[first].period}): a record dated {day} must "
                f"be kept until {stat.until}, the policy gives {rule.until(day)} — "
                "it may only lengthen periods"
            )


def _statutory_samples(base: RetentionEngine, kind: str, day: date) -> list[Retention]:
    both = (True, False)
    if kind == "invoice":
        return [base.invoice(issue_date=day)]
    if kind == "correction_invoice":
        return [base.correction_invoice(issue_date=day)]
    if kind == "payment":
        return [base.payment(paid_at=day, consumer=c) for c in both]
    if kind == "refund":
        return [base.refund(refunded_at=day, consumer=c) for c in both]
    return [base.order(anchor=day, consumer=c) for c in both]
