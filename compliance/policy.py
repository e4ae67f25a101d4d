"""Retention policy data: the catalogue of basis codes, and the tenant policy file format.

``RULES`` maps every stable basis code (e.g. ``PL_VAT_112+OP_70_1``) to its text and its row in
the retention table; ``compliance.retention`` computes the dates. A tenant policy is a small JSON
file that lengthens (or, for logs, replaces) the defaults.

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
depends on the engine configuration, so that check lives in ``compliance.retention``
(``load_policy`` and ``RetentionEngine``).
"""

from __future__ import annotations

import json
import os
import re
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
    "RULES",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "Rule",
    "basis_text",
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


# --- basis codes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A basis code's text and its row in the retention table."""

    text: str
    anchor: str
    period: str
    formula: str


_TP = "VAT tax point (defaults to the issue date)"
RULES: dict[str, Rule] = {
    "PL_VAT_112+OP_70_1": Rule(
        "VAT Act art. 112 + Tax Ordinance art. 70 §1: 5 years from the end of the year of the "
        "VAT deadline",
        _TP,
        "5 years from the end of the year of the VAT deadline: year + 5 for Jan-Nov, "
        "+ 6 for Dec/Q4",
        "EOY(year(25th of the month after the settlement period) + 5)",
    ),
    "PL_OP_86+CIT_27": Rule(
        "Tax Ordinance art. 86 §1 + art. 70 §1, CIT Act art. 27: 5 years from the end of the "
        "year of the annual CIT deadline",
        "end of the CIT tax year containing the tax point / record date",
        "5 years from the end of the year of the annual CIT deadline: year + 6 for a "
        "calendar tax year",
        "EOY(year(last day of the 3rd month after the tax year) + 5)",
    ),
    "PL_OP_86+PIT_45": Rule(
        "Tax Ordinance art. 86 §1 + art. 70 §1, PIT Act art. 45: 5 years from the end of the "
        "year of the annual PIT deadline",
        "PIT tax year (calendar year) containing the tax point / record date",
        "6 years after the end of the tax year",
        "EOY(year(tax year) + 6)",
    ),
    "PL_UOR_74_2_8": Rule(
        "Accounting Act art. 74 ust. 2 pkt 8 + ust. 3: 5 years from the start of the year "
        "after the fiscal year",
        "end of the fiscal year containing the record date",
        "5 years from the start of the following year",
        "EOY(year(fy_end) + 5)",
    ),
    "PL_UOR_74_2_4": Rule(
        "Accounting Act art. 74 ust. 2 pkt 4: commercial contract evidence, 5 years from the "
        "start of the year after the fiscal year of final settlement",
        "fiscal year of the order anchor (final settlement / account closure)",
        "5 years from the start of the following year",
        "EOY(year(fy_end(anchor)) + 5)",
    ),
    "PL_KC_118": Rule(
        "Civil Code art. 118 + 120: consumer claims time-barred after 6 years, ending on "
        "31 December (legitimate interest, GDPR art. 6(1)(f), 17(3)(e))",
        "latest of last payment, last refund, account closure",
        "6 years ending on 31 December",
        "EOY(year(anchor) + 6)",
    ),
    "PL_KC_118_B2B": Rule(
        "Civil Code art. 118 + 120: business and periodic claims time-barred after 3 years, "
        "ending on 31 December (legitimate interest, GDPR art. 6(1)(f), 17(3)(e))",
        "latest of last payment, last refund, account closure",
        "3 years ending on 31 December",
        "EOY(year(anchor) + 3)",
    ),
    "PL_VAT_112aa_KSEF": Rule(
        "VAT Act art. 112aa: KSeF keeps structured invoices 10 years from the end of the issue "
        "year (informational, never shortens our own copy)",
        "issue date",
        "10 years from the end of the issue year (ksef_storage_until)",
        "EOY(year(issue) + 10)",
    ),
    "DE_USTG_14B_AO_147": Rule(
        "§14b Abs. 1 UStG + §147 Abs. 1 Nr. 4, Abs. 3 AO: 8 years from the end of the calendar "
        "year of issue (Art. 97 §19a EGAO: documents from 2015 onwards)",
        "issue date",
        "8 years from the end of the issue year",
        "EOY(year(issue) + 8)",
    ),
    "DE_AO_147_BELEG": Rule(
        "§147 Abs. 1 Nr. 4, Abs. 3 AO (Buchungsbeleg): 8 years from the end of the calendar "
        "year of the voucher",
        "payment / refund date",
        "8 years from the end of the year",
        "EOY(year(date) + 8)",
    ),
    "DE_AO_147_OLD_10Y": Rule(
        "§147 Abs. 3 AO (old wording): 10 years from the end of the calendar year; documents "
        "up to 2014, whose period expired before the 8-year rule (Art. 97 §19a EGAO)",
        "document date (up to 2014)",
        "10 years from the end of the year",
        "EOY(year(date) + 10)",
    ),
    "DE_AO_147_BRIEF": Rule(
        "§147 Abs. 1 Nr. 2, 3, Abs. 3 AO (Handels- und Geschäftsbriefe): 6 years from the end "
        "of the calendar year",
        "latest of last payment, last refund, account closure",
        "6 years from the end of the year",
        "EOY(year(anchor) + 6)",
    ),
    "GEN_VAT_247_10Y": Rule(
        "VAT Directive 2006/112/EC art. 247 (member state sets the period): default 10 years "
        "from the end of the issue year",
        "issue date",
        "10 years from the end of the year (configurable)",
        "EOY(year(issue) + 10)",
    ),
    "GEN_ACCT_10Y": Rule(
        "National accounting law (default): 10 years from the end of the year of the payment "
        "or refund",
        "payment / refund date",
        "10 years from the end of the year",
        "EOY(year(date) + 10)",
    ),
    "GEN_CIVIL_6Y": Rule(
        "National limitation law; GDPR art. 17(3)(e): default 6 years from the end of the "
        "anchor year",
        "latest of last payment, last refund, account closure",
        "6 years from the end of the year",
        "EOY(year(anchor) + 6)",
    ),
    "GDPR_5_1_E_WEBHOOK_90D": Rule(
        "GDPR art. 5(1)(c),(e) + 6(1)(f): webhook event kept 90 days after receipt; the payment "
        "row carries the legal retention",
        "received_at",
        "90 days rolling",
        "received_at + 90 days",
    ),
    "GDPR_5_1_E_LOG_365D": Rule(
        "GDPR art. 5(1)(e), 32 + 6(1)(f), PCI DSS 10.5.1 as a benchmark: access/audit log kept "
        "365 days",
        "log timestamp",
        "365 days rolling",
        "ts + 365 days",
    ),
    "GDPR_5_1_E_LOGIN_90D": Rule(
        "GDPR art. 5(1)(e), 32 + 6(1)(f): login attempt kept 90 days",
        "attempt timestamp",
        "90 days rolling",
        "ts + 90 days",
    ),
    "LINKED_CORRECTION": Rule(
        "Kept as long as its correction invoice (VAT Act art. 112; retention.md §1.5)",
        "each correction invoice",
        "the correction's retention",
        "max(..., correction.retain_until)",
    ),
    "LINKED_INVOICE": Rule(
        "Kept at least as long as the linked invoice (payment evidence for the invoice)",
        "linked invoice",
        "the invoice's retention",
        "max(..., invoice.retain_until)",
    ),
    "LINKED_PAYMENT": Rule(
        "event_id kept with the applied payment record (idempotency and audit; retention.md §4)",
        "payment produced by the event (webhook_event_linked)",
        "the payment's retention",
        "max(received_at + 90 days, payment.retain_until)",
    ),
    "GDPR_17_3_B_STUB": Rule(
        "GDPR art. 17(3)(b),(e) + art. 18: pseudonymous stub kept, restricted, until the last "
        "linked retained record expires",
        "linked invoices, payments and orders",
        "until the last linked record expires",
        "max(linked.retain_until)",
    ),
    "GDPR_17_1_ERASE": Rule(
        "GDPR art. 17(1) + 12(3): no linked retained record, delete at once",
        "erasure date",
        "none",
        "erased_at",
    ),
}

_POLICY_CODE = re.compile(r"POLICY_([A-Z_]+)_(\d+)([YD])")
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


def basis_text(code: str, policy: Policy | None = None) -> str | None:
    """Text of one (not joined) basis code, or None when the code is unknown."""
    if code in RULES:
        return RULES[code].text
    own = next((r for r in (policy.rules if policy else ()) if r.code == code), None)
    if own is not None:
        return own.text
    # A policy code from an older policy file still gets its generic text.
    m = _POLICY_CODE.fullmatch(code)
    if m is None or m[1].lower() not in POLICY_KINDS:
        return None
    kind, n = m[1].lower(), int(m[2])
    rule = PolicyRule(kind, eoy_years=n) if m[3] == "Y" else PolicyRule(kind, days=n)
    return rule.text
