"""The tenant retention policy file: its format, parsing and the record kinds it may set.

A tenant policy is a small JSON file that lengthens (or, for logs, replaces) the statutory
defaults of docs/retention-law.md. The basis codes it adds next to the statutory ones are
described by ``compliance.basis_codes``.

File format (JSON, UTF-8; JSON rather than YAML so that no parser dependency is needed)::

    {
      "version": 1,
      "rules": {
        "order":     {"eoy_years": 7, "basis": "billing data 7 years after fiscal year end"},
        "payment":   {"eoy_years": 7},
        "audit_log": {"days": 60, "basis": "access logs 60 days"}
      }
    }

- ``version`` is optional and must be 1 when given.
- ``rules`` maps a record kind to exactly one period:
  ``{"eoy_years": N}`` keeps the record until ``EOY(year(anchor) + N)`` (31 December, like the
  Polish and German statutes), ``{"days": N}`` keeps it until ``anchor + N days`` (rolling).
- ``basis`` (optional) is the business reason; it is shown in the rule text.
- Kinds invoice, correction_invoice, order, payment, refund may only be lengthened (statutory
  minimums); webhook_event, audit_log, login_attempt are replaced (no statutory minimum);
  customer_stub cannot be set (it follows its linked records, GDPR art. 17(3)).
- The anchor is the record's own date: issue date (invoice, correction_invoice), the later of
  payment date and contract anchor (payment), refund date, order anchor, receipt/log timestamp.

This module only parses and checks the format. Whether a rule would shorten a statutory period
depends on the engine configuration, so that check lives in ``compliance.policy_check`` (run by
``compliance.retention.load_policy`` and ``RetentionEngine``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "FLOOR_KINDS",
    "POLICY_ANCHOR",
    "POLICY_KINDS",
    "REPLACEABLE_KINDS",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "parse_policy",
]

# Tax/accounting kinds: the statutory rule is a minimum, so a policy may only lengthen it.
FLOOR_KINDS = ("invoice", "correction_invoice", "order", "payment", "refund")
# Log kinds: no statute sets a minimum (GDPR art. 5(1)(e) rather sets a maximum; PCI DSS 10.5.1
# is only a benchmark), so a policy replaces the default and may shorten it.
REPLACEABLE_KINDS = ("webhook_event", "audit_log", "login_attempt")
POLICY_KINDS = FLOOR_KINDS + REPLACEABLE_KINDS

_MAX_YEARS = 100
_MAX_DAYS = 36_500
_RULE_KEYS = {"eoy_years", "days", "basis"}


class PolicyError(ValueError):
    """A policy file is malformed or would shorten a statutory retention period."""


@dataclass(frozen=True)
class PolicyRule:
    """One tenant rule: keep records of ``kind`` for ``eoy_years`` or ``days`` after the anchor."""

    kind: str
    eoy_years: int | None = None
    days: int | None = None
    basis: str = ""

    def until(self, anchor: date) -> date:
        """Return the date this rule keeps a record anchored on ``anchor`` until."""
        if self.eoy_years is not None:
            return date(anchor.year + self.eoy_years, 12, 31)
        assert self.days is not None
        return anchor + timedelta(days=self.days)

    @property
    def code(self) -> str:
        """Stable basis code, e.g. ``POLICY_ORDER_7Y`` or ``POLICY_AUDIT_LOG_60D``."""
        suffix = f"{self.eoy_years}Y" if self.eoy_years is not None else f"{self.days}D"
        return f"POLICY_{self.kind.upper()}_{suffix}"

    @property
    def period(self) -> str:
        """The period in words, e.g. ``7 years after the end of the anchor year``."""
        if self.eoy_years is not None:
            return f"{self.eoy_years} years after the end of the anchor year"
        return f"{self.days} days"

    @property
    def formula(self) -> str:
        """The period as a formula for the retention table."""
        if self.eoy_years is not None:
            return f"EOY(year(anchor) + {self.eoy_years})"
        return f"anchor + {self.days} days"

    @property
    def text(self) -> str:
        """Human-readable basis text stored next to the code."""
        reason = f" ({self.basis})" if self.basis else ""
        return f"Internal retention policy for {self.kind}{reason}: {self.period}"


@dataclass(frozen=True)
class Policy:
    """A parsed tenant policy: at most one rule per record kind."""

    rules: tuple[PolicyRule, ...] = ()

    def rule(self, kind: str) -> PolicyRule | None:
        """Return the rule for ``kind``, or None when the policy does not mention it."""
        return next((r for r in self.rules if r.kind == kind), None)


def parse_policy(source: str | os.PathLike[str] | Mapping[str, Any]) -> Policy:
    """Parse a policy from a JSON file path or an already-decoded mapping; check the format only."""
    data = _read(source) if isinstance(source, str | os.PathLike) else source
    if not isinstance(data, Mapping):
        raise PolicyError("policy must be a JSON object with a 'rules' object")
    unknown = set(data) - {"version", "rules"}
    if unknown:
        raise PolicyError(f"unknown policy keys: {sorted(unknown)}")
    if data.get("version", 1) != 1:
        raise PolicyError(f"unsupported policy version {data['version']!r} (expected 1)")
    rules = data.get("rules")
    if not isinstance(rules, Mapping):
        raise PolicyError("policy needs a 'rules' object mapping record kinds to periods")
    return Policy(rules=tuple(_parse_rule(kind, spec) for kind, spec in rules.items()))


def _read(path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy file {os.fspath(path)!r} is not valid JSON: {exc}") from exc


def _parse_rule(kind: str, spec: Any) -> PolicyRule:
    if kind == "customer_stub":
        # GDPR art. 17(3): the stub may only live as long as its linked retained records.
        raise PolicyError("'customer_stub' follows its linked records and cannot be set by policy")
    if kind not in POLICY_KINDS:
        raise PolicyError(f"unknown record kind {kind!r}; expected one of {list(POLICY_KINDS)}")
    if not isinstance(spec, Mapping):
        raise PolicyError(f"policy for {kind!r} must be an object like {{'eoy_years': 7}}")
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise PolicyError(f"policy for {kind!r} has unknown keys {sorted(unknown)}")
    periods = [k for k in ("eoy_years", "days") if k in spec]
    if len(periods) != 1:
        raise PolicyError(f"policy for {kind!r} needs exactly one of 'eoy_years' or 'days'")
    key = periods[0]
    value = spec[key]
    limit = _MAX_YEARS if key == "eoy_years" else _MAX_DAYS
    # bool is an int subclass; reject it so that `true` is not read as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise PolicyError(f"policy for {kind!r}: {key} must be an integer from 1 to {limit}")
    basis = spec.get("basis", "")
    if not isinstance(basis, str):
        raise PolicyError(f"policy for {kind!r}: basis must be a string")
    return PolicyRule(kind=kind, basis=basis.strip(), **{key: value})


# The anchor each record kind uses for a policy rule (module docstring).
POLICY_ANCHOR = {
    "invoice": "issue date",
    "correction_invoice": "issue date",
    "order": "order anchor",
    "payment": "later of payment date and contract anchor",
    "refund": "refund date",
    "webhook_event": "received_at",
    "audit_log": "log timestamp",
    "login_attempt": "attempt timestamp",
}
