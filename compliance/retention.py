"""Retention rules engine: which statute keeps a record, and until when (shared/retention.md §5).

Every record kind gets the MAX over independent rules (retention.md §0.1). The result carries the
winning basis code(s), a readable text, the date, and every candidate for the audit field.

Decisions where retention.md leaves room (review with the tax adviser / DPO):

- Codes: one code per rule, e.g. ``PL_VAT_112+OP_70_1``. Tied winners are joined with ``+`` in
  rule order (VAT, income tax, books, civil; then links, then policy). Some codes contain ``+``
  themselves, so ``describe`` splits a stored code by longest match against the known codes.
  A ``LINKED_*`` or ``POLICY_*`` code is named only when it is strictly later than the record's
  own rules: on a tie the record's own statute is the basis (it is the stronger ground, and
  this keeps joined codes within the 64-character ``retention_basis`` column).
- ``income_tax_overlay`` and ``books`` switch the income-tax (OP art. 86) and Accounting Act
  art. 74 rules on or off for every record kind (invoice, correction, payment, refund, order).
- Orders with ``books`` also get Accounting Act art. 74 ust. 2 pkt 4 (commercial contracts). This
  rule wins over the 3-year B2B civil rule.
- KSeF (VAT art. 112aa) is only informational (``Retention.ksef_storage_until``). It is never a
  candidate, because KSeF storing a copy does not end our own income-tax or accounting duties.
- A payment's civil anchor is the later of ``paid_at`` and ``contract_anchor``.
- A correction, a linked invoice or a linked payment adds a ``LINKED_*`` candidate. This code
  says why the date moved, and ``Candidate.ref`` keeps the linked record's own code.
- webhook_event rows: see ``RetentionEngine.webhook_event``.
- Rolling periods count days (``ts + 365 days``, not "12 months"). A timezone-aware timestamp is
  first converted to its UTC date.
- Policy: tax and accounting kinds (invoice, correction_invoice, payment, refund) and order (the
  Accounting Act / §147 AO apply there too) are statutory MINIMUMS, so a policy can only lengthen
  them: the engine takes max(statutory, policy). Logs (audit_log, login_attempt, webhook_event)
  have no statutory minimum. GDPR art. 32 + 6(1)(f) justify keeping them, art. 5(1)(e) limits
  them, and PCI DSS 10.5.1 is only a benchmark. For logs a policy REPLACES the default and may
  shorten it.
- "Shorter" is checked by sampling, not by comparing parameters. The statutory result is computed
  on the first and last day of every month of 2026 plus 2028-02-29 (consumer and business), for
  the engine's own configuration. These dates cover every settlement-period, quarter and
  fiscal-year case, and a ``days`` rule is at its shortest on the 1st. A policy that is shorter
  on any sample raises ``PolicyError``.
- Basis texts and the policy file format live in ``compliance.policy``.
- Not implemented yet: the PL_OSS preset, the ``loss_year_extension`` tenant option, and the
  optional AML/complaint rows of §5.
- Legal holds are flags and not dates (§0.6). The engine never computes them, and
  ``select_expired`` skips held rows. A row is kept through ``retain_until`` and purged once
  ``today > retain_until``.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from compliance.policy import (
    POLICY_ANCHOR,
    REPLACEABLE_KINDS,
    RULES,
    Policy,
    PolicyError,
    basis_text,
    parse_policy,
)

__all__ = [
    "HOLD_SCOPES",
    "PRESETS",
    "RECORD_KINDS",
    "Candidate",
    "LegalHold",
    "Policy",
    "PolicyError",
    "RecordRef",
    "Retention",
    "RetentionEngine",
    "Row",
    "de_retain",
    "eoy",
    "fiscal_year_end",
    "held_by",
    "hold_covers",
    "load_policy",
    "pl_acct_retain",
    "pl_civil_retain",
    "pl_income_retain",
    "pl_vat_deadline",
    "pl_vat_retain",
    "rolling",
    "select_expired",
]

PRESETS = ("PL", "DE", "generic")
RECORD_KINDS = (
    "invoice",
    "correction_invoice",
    "order",
    "payment",
    "refund",
    "webhook_event",
    "audit_log",
    "login_attempt",
    "customer_stub",
)

# --- date functions (retention.md §5a) -----------------------------------------------------


def eoy(year: int) -> date:
    """31 December of ``year``: Polish and German periods end on the last day of a year."""
    return date(year, 12, 31)


def _add_months(d: date, months: int) -> date:
    y, m = d.year + (d.month - 1 + months) // 12, (d.month - 1 + months) % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def _month_end(d: date) -> date:
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def _day(value: date | datetime) -> date:
    """Calendar day of a date or timestamp (aware timestamps are taken in UTC)."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return value


def pl_vat_deadline(tax_point: date, quarterly: bool = False) -> date:
    """VAT payment deadline: 25th of the month after the settlement period (VAT art. 103)."""
    # The OP art. 12 §5 weekend/holiday shift never changes the year, so it is ignored.
    end_month = ((tax_point.month - 1) // 3 + 1) * 3 if quarterly else tax_point.month
    nxt = _add_months(date(tax_point.year, end_month, 1), 1)
    return date(nxt.year, nxt.month, 25)


def pl_vat_retain(tax_point: date, quarterly: bool = False) -> date:
    """VAT art. 112 + OP art. 70 §1: 5 years from the end of the year of the VAT deadline."""
    return eoy(pl_vat_deadline(tax_point, quarterly).year + 5)


def pl_income_retain(tax_year_end: date, regime: str = "CIT") -> date:
    """OP art. 86 §1 + art. 70 §1: 5 years from the end of the year of the annual deadline."""
    if regime == "CIT":  # CIT art. 27 ust. 1: end of the 3rd month after the tax year
        deadline = _month_end(_add_months(date(tax_year_end.year, tax_year_end.month, 1), 3))
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
    return _day(ts) + timedelta(days=days)


def fiscal_year_end(day: date, end_month: int = 12) -> date:
    """Last day of the fiscal (or CIT tax) year containing ``day``."""
    year = day.year if day.month <= end_month else day.year + 1
    return _month_end(date(year, end_month, 1))


# Art. 97 §19a Abs. 2 EGAO: the 8-year rule covers every document whose old 10-year period had
# not expired by the end of 2024, so documents from 2015 onwards.
_DE_OLD_RULE_EXPIRED_BEFORE = date(2025, 1, 1)


def de_retain(doc_date: date) -> date:
    """§147 Abs. 3/4 AO, §14b UStG: 8 years from the end of the year (10 before 2015 docs)."""
    old = eoy(doc_date.year + 10)
    return old if old < _DE_OLD_RULE_EXPIRED_BEFORE else eoy(doc_date.year + 8)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One rule's answer; ``ref`` names the linked record's basis for ``LINKED_*`` rules."""

    code: str
    text: str
    until: date
    ref: str = ""


@dataclass(frozen=True)
class Retention:
    """Retention decided for one record: winning code(s) and text, date, all candidates."""

    code: str
    text: str
    until: date
    candidates: tuple[Candidate, ...]
    kind: str
    ksef_storage_until: date | None = None

    def audit_record(self) -> list[dict[str, str]]:
        """JSON-ready list of every candidate, for the record's audit field."""
        return [
            {"code": c.code, "text": c.text, "until": c.until.isoformat(), "ref": c.ref}
            for c in self.candidates
        ]


@dataclass(frozen=True)
class Row:
    """One line of the effective retention table."""

    record_kind: str
    code: str
    basis: str
    anchor: str
    period: str
    formula: str


_LINKS = {
    "invoice": ("LINKED_CORRECTION",),
    "correction_invoice": (),
    "payment": ("LINKED_INVOICE",),
    "refund": ("LINKED_CORRECTION",),
    "webhook_event": ("LINKED_PAYMENT",),
    "customer_stub": ("GDPR_17_3_B_STUB", "GDPR_17_1_ERASE"),
}
# First and last day of each month of a sample year plus a leap day (module docstring).
_SAMPLE_DAYS = (
    *(d for m in range(1, 13) for d in (date(2026, m, 1), _month_end(date(2026, m, 1)))),
    date(2028, 2, 29),
)


# --- engine --------------------------------------------------------------------------------


class RetentionEngine:
    """Computes ``Retention`` for each record kind under one preset and tenant configuration.

    ``preset`` is "PL", "DE" or "generic". The PL-only options (income-tax overlay, books,
    quarterly VAT, CIT/PIT, fiscal year) are ignored by the other presets. A ``policy`` is
    checked against this configuration when the engine is built (``PolicyError`` if it shortens
    a statutory period).
    """

    def __init__(
        self,
        preset: str = "PL",
        *,
        income_tax_overlay: bool = True,
        books: bool = True,
        quarterly_vat: bool = False,
        tax_regime: Literal["CIT", "PIT"] = "CIT",
        fiscal_year_end_month: int = 12,
        policy: Policy | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown retention preset {preset!r}; expected one of {PRESETS}")
        if tax_regime not in ("CIT", "PIT"):
            raise ValueError(f"unknown tax regime {tax_regime!r}; expected 'CIT' or 'PIT'")
        if not 1 <= fiscal_year_end_month <= 12:
            raise ValueError("fiscal_year_end_month must be 1..12")
        self.preset = preset
        self.income_tax_overlay = income_tax_overlay
        self.books = books
        self.quarterly_vat = quarterly_vat
        self.tax_regime = tax_regime
        self.fiscal_year_end_month = fiscal_year_end_month
        self.policy = policy if policy is not None else Policy()
        if self.policy.rules:
            self._check_policy()

    # -- record kinds --

    def invoice(
        self,
        *,
        issue_date: date,
        tax_point: date | None = None,
        ksef_accepted: bool = False,
        corrections: Sequence[Retention] = (),
    ) -> Retention:
        """Sales invoice: max over the enabled rules, extended to each correction (§1.5)."""
        issue = _day(issue_date)
        cands = self._document(issue, tax_point)
        cands += [self._link("LINKED_CORRECTION", c) for c in corrections]
        return self._result(
            "invoice", self._with_policy("invoice", cands, issue), issue, ksef_accepted
        )

    def correction_invoice(
        self, *, issue_date: date, tax_point: date | None = None, ksef_accepted: bool = False
    ) -> Retention:
        """Correction invoice: computed like an invoice from its own period and tax year."""
        issue = _day(issue_date)
        cands = self._with_policy("correction_invoice", self._document(issue, tax_point), issue)
        return self._result("correction_invoice", cands, issue, ksef_accepted)

    def payment(
        self,
        *,
        paid_at: date,
        consumer: bool,
        contract_anchor: date | None = None,
        invoice: Retention | None = None,
    ) -> Retention:
        """Payment: tax + books for the payment's year, civil claims from the later anchor."""
        paid = _day(paid_at)
        anchor = max(paid, _day(contract_anchor)) if contract_anchor else paid
        cands = self._ledger(paid) + self._civil(anchor, consumer)
        if invoice is not None:
            cands.append(self._link("LINKED_INVOICE", invoice))
        return self._result("payment", self._with_policy("payment", cands, anchor))

    def refund(
        self, *, refunded_at: date, consumer: bool, correction: Retention | None = None
    ) -> Retention:
        """Refund: the payment rule from the refund date, at least as long as its correction."""
        day = _day(refunded_at)
        cands = self._ledger(day) + self._civil(day, consumer)
        if correction is not None:
            cands.append(self._link("LINKED_CORRECTION", correction))
        return self._result("refund", self._with_policy("refund", cands, day))

    def order(self, *, anchor: date, consumer: bool) -> Retention:
        """Order: anchor = latest of last payment, last refund, account closure."""
        day = _day(anchor)
        if self.preset == "PL":
            cands = self._civil(day, consumer)
            if self.books:  # art. 74 ust. 2 pkt 4: evidence on commercial contracts
                cands.append(self._cand("PL_UOR_74_2_4", pl_acct_retain(self._fy_end(day))))
        elif self.preset == "DE":
            cands = [self._cand("DE_AO_147_BRIEF", eoy(day.year + 6))]
        else:
            cands = [self._cand("GEN_CIVIL_6Y", eoy(day.year + 6))]
        return self._result("order", self._with_policy("order", cands, day))

    def webhook_event(self, *, received_at: datetime | date) -> Retention:
        """Webhook event row: 90 days after receipt (retention.md §5, webhook_event_log).

        Our ``webhook_events`` row holds only the event key, type, body hash and outcome, not
        the body. The legal retention is on the derived payment/refund row, so the row gets the
        90-day rule from the table. §4 says to store ``event_id`` permanently with the payment
        record. For events that applied a payment transition, use ``webhook_event_linked``.
        """
        day = _day(received_at)
        return self._result("webhook_event", self._log("webhook_event", day))

    def webhook_event_linked(self, received_at: datetime | date, payment: Retention) -> Retention:
        """Webhook event that produced an applied payment: max(90 days, payment.until) (§4)."""
        day = _day(received_at)
        cands = [*self._log("webhook_event", day), self._link("LINKED_PAYMENT", payment)]
        return self._result("webhook_event", cands)

    def audit_log(self, *, at: datetime | date) -> Retention:
        """Access/audit log line: 365 days rolling (PCI DSS 10.5.1 benchmark)."""
        return self._result("audit_log", self._log("audit_log", _day(at)))

    def login_attempt(self, *, at: datetime | date) -> Retention:
        """Login attempt: 90 days rolling."""
        return self._result("login_attempt", self._log("login_attempt", _day(at)))

    def customer_stub(self, *, erased_at: date, linked: Sequence[Retention]) -> Retention:
        """Pseudonymous stub after erasure: the last linked record's date, else delete at once."""
        day = _day(erased_at)
        cands = [self._link("GDPR_17_3_B_STUB", r) for r in linked]
        if cands and max(c.until for c in cands) > day:
            return self._result("customer_stub", cands)
        # Nothing linked is still retained: art. 12(3) / 17(1), erase now.
        erase = self._cand("GDPR_17_1_ERASE", day)
        return Retention(erase.code, erase.text, day, (*cands, erase), "customer_stub")

    # -- codes and the table --

    def describe(self, code: str) -> str:
        """Text for a stored code; tied codes joined with '+' give texts joined with '; '."""
        parts, texts, i = code.split("+"), [], 0
        while i < len(parts):
            for j in range(len(parts), i, -1):  # longest match: some codes contain '+'
                text = basis_text("+".join(parts[i:j]), self.policy)
                if text is not None:
                    texts.append(text)
                    i = j
                    break
            else:
                raise KeyError(f"unknown retention basis code {parts[i]!r} in {code!r}")
        return "; ".join(texts)

    def table(self) -> list[Row]:
        """Every rule of the effective configuration, per record kind (for docs/retention.md)."""
        rows = []
        for kind in RECORD_KINDS:
            rule = self.policy.rule(kind)
            replaced = rule is not None and kind in REPLACEABLE_KINDS
            codes = [] if replaced else list(self._codes(kind))
            if self.preset == "PL" and kind in ("invoice", "correction_invoice"):
                codes.append("PL_VAT_112aa_KSEF")
            for code in (*codes, *_LINKS.get(kind, ())):
                r = RULES[code]
                rows.append(Row(kind, code, r.text, r.anchor, r.period, r.formula))
            if rule is not None:
                anchor = POLICY_ANCHOR[kind]
                rows.append(Row(kind, rule.code, rule.text, anchor, rule.period, rule.formula))
        return rows

    def render_table_markdown(self) -> str:
        """The effective table as Markdown (written to docs/retention.md by the CLI)."""
        opts = (
            f"income_tax_overlay={self.income_tax_overlay}, books={self.books}, "
            f"quarterly_vat={self.quarterly_vat}, tax_regime={self.tax_regime}, "
            f"fiscal_year_end_month={self.fiscal_year_end_month}"
        )
        lines = [
            "# Retention periods",
            "",
            f"Generated by `kwit retention table` for preset **{self.preset}** ({opts}"
            f"{', with tenant policy' if self.policy.rules else ''}). Do not edit by hand.",
            "",
            "Each record is kept until the latest date of the rules listed for its kind "
            "(`retain_until = max(...)`), and the winning code is stored in `retention_basis`. "
            "A legal hold suspends deletion whatever the date. Rows are purged when "
            "today > retain_until.",
            "",
            "| record kind | code | basis | anchor | period | retain_until formula |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.table():
            cells = (r.record_kind, f"`{r.code}`", r.basis, r.anchor, r.period, f"`{r.formula}`")
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    # -- internals --

    def _codes(self, kind: str) -> tuple[str, ...]:
        """Statutory/default rule codes of ``kind`` in this configuration (rule order)."""
        if kind in ("webhook_event", "audit_log", "login_attempt"):
            return (_LOG_RULES[kind][0],)
        if kind == "customer_stub":
            return ()
        if self.preset == "DE":
            return _DE_CODES[kind]
        if self.preset == "generic":
            return _GENERIC_CODES[kind]
        income = ("PL_OP_86+CIT_27" if self.tax_regime == "CIT" else "PL_OP_86+PIT_45",)
        ledger = (income if self.income_tax_overlay else ()) + (
            ("PL_UOR_74_2_8",) if self.books else ()
        )
        civil = ("PL_KC_118", "PL_KC_118_B2B")
        return {
            "invoice": ("PL_VAT_112+OP_70_1", *ledger),
            "correction_invoice": ("PL_VAT_112+OP_70_1", *ledger),
            "payment": (*ledger, *civil),
            "refund": (*ledger, *civil),
            "order": (*civil, *(("PL_UOR_74_2_4",) if self.books else ())),
        }[kind]

    def _cand(self, code: str, until: date) -> Candidate:
        return Candidate(code, RULES[code].text, until)

    def _link(self, code: str, linked: Retention) -> Candidate:
        return Candidate(code, RULES[code].text, linked.until, f"{linked.kind}:{linked.code}")

    def _fy_end(self, day: date) -> date:
        return fiscal_year_end(day, self.fiscal_year_end_month)

    def _document(self, issue: date, tax_point: date | None) -> list[Candidate]:
        if self.preset == "PL":
            tp = _day(tax_point) if tax_point is not None else issue
            vat = self._cand("PL_VAT_112+OP_70_1", pl_vat_retain(tp, self.quarterly_vat))
            return [vat, *self._pl_tax_books(tp)]
        if self.preset == "DE":
            return [self._de(issue, "DE_USTG_14B_AO_147")]
        return [self._cand("GEN_VAT_247_10Y", eoy(issue.year + 10))]

    def _pl_tax_books(self, day: date) -> list[Candidate]:
        out = []
        if self.income_tax_overlay:
            if self.tax_regime == "CIT":  # CIT tax year = the fiscal year (CIT art. 8)
                until = pl_income_retain(self._fy_end(day), "CIT")
                out.append(self._cand("PL_OP_86+CIT_27", until))
            else:  # the PIT tax year is always the calendar year
                out.append(self._cand("PL_OP_86+PIT_45", pl_income_retain(eoy(day.year), "PIT")))
        if self.books:
            out.append(self._cand("PL_UOR_74_2_8", pl_acct_retain(self._fy_end(day))))
        return out

    def _ledger(self, day: date) -> list[Candidate]:
        """Tax/accounting rules for payment and refund records."""
        if self.preset == "PL":
            return self._pl_tax_books(day)
        if self.preset == "DE":
            return [self._de(day, "DE_AO_147_BELEG")]
        return [self._cand("GEN_ACCT_10Y", eoy(day.year + 10))]

    def _civil(self, anchor: date, consumer: bool) -> list[Candidate]:
        if self.preset != "PL":  # DE/generic payments follow the voucher rule only (§5)
            return []
        code = "PL_KC_118" if consumer else "PL_KC_118_B2B"
        return [self._cand(code, pl_civil_retain(anchor, consumer))]

    def _de(self, day: date, code: str) -> Candidate:
        until = de_retain(day)
        return self._cand(code if until.year == day.year + 8 else "DE_AO_147_OLD_10Y", until)

    def _log(self, kind: str, day: date) -> list[Candidate]:
        code, days = _LOG_RULES[kind]
        return self._with_policy(kind, [self._cand(code, rolling(day, days))], day)

    def _with_policy(self, kind: str, cands: list[Candidate], anchor: date) -> list[Candidate]:
        rule = self.policy.rule(kind)
        if rule is None:
            return cands
        cand = Candidate(rule.code, rule.text, rule.until(anchor))
        # Logs have no statutory minimum, so the policy replaces the default there.
        return [cand] if kind in REPLACEABLE_KINDS else [*cands, cand]

    def _result(
        self, kind: str, cands: list[Candidate], issue: date | None = None, ksef: bool = False
    ) -> Retention:
        until = max(c.until for c in cands)
        top = [c for c in cands if c.until == until]
        # A link or policy names the basis only when it extends the record's own rules; on a
        # tie the record's own statute is the stronger basis (and keeps codes within 64 chars).
        own = [c for c in top if not c.ref and not c.code.startswith("POLICY_")]
        winners = list(dict.fromkeys(c.code for c in own or top))
        texts = {c.code: c.text for c in cands}
        # art. 112aa: KSeF storage is informational and never shortens our own copy.
        ksef_until = eoy(issue.year + 10) if ksef and issue and self.preset == "PL" else None
        return Retention(
            code="+".join(winners),
            text="; ".join(texts[c] for c in winners),
            until=until,
            candidates=tuple(cands),
            kind=kind,
            ksef_storage_until=ksef_until,
        )

    def _check_policy(self) -> None:
        """Reject a policy rule that is shorter than the statutory result on any sample date."""
        base = RetentionEngine(
            self.preset,
            income_tax_overlay=self.income_tax_overlay,
            books=self.books,
            quarterly_vat=self.quarterly_vat,
            tax_regime=self.tax_regime,
            fiscal_year_end_month=self.fiscal_year_end_month,
        )
        for rule in self.policy.rules:
            if rule.kind in REPLACEABLE_KINDS:
                continue
            worst: tuple[int, date, Retention] | None = None
            for day in _SAMPLE_DAYS:
                for stat in base._statutory_samples(rule.kind, day):
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

    def _statutory_samples(self, kind: str, day: date) -> list[Retention]:
        both = (True, False)
        if kind == "invoice":
            return [self.invoice(issue_date=day)]
        if kind == "correction_invoice":
            return [self.correction_invoice(issue_date=day)]
        if kind == "payment":
            return [self.payment(paid_at=day, consumer=c) for c in both]
        if kind == "refund":
            return [self.refund(refunded_at=day, consumer=c) for c in both]
        return [self.order(anchor=day, consumer=c) for c in both]


_LOG_RULES = {
    "webhook_event": ("GDPR_5_1_E_WEBHOOK_90D", 90),
    "audit_log": ("GDPR_5_1_E_LOG_365D", 365),
    "login_attempt": ("GDPR_5_1_E_LOGIN_90D", 90),
}
_DE_CODES = {
    "invoice": ("DE_USTG_14B_AO_147", "DE_AO_147_OLD_10Y"),
    "correction_invoice": ("DE_USTG_14B_AO_147", "DE_AO_147_OLD_10Y"),
    "payment": ("DE_AO_147_BELEG", "DE_AO_147_OLD_10Y"),
    "refund": ("DE_AO_147_BELEG", "DE_AO_147_OLD_10Y"),
    "order": ("DE_AO_147_BRIEF",),
}
_GENERIC_CODES = {
    "invoice": ("GEN_VAT_247_10Y",),
    "correction_invoice": ("GEN_VAT_247_10Y",),
    "payment": ("GEN_ACCT_10Y",),
    "refund": ("GEN_ACCT_10Y",),
    "order": ("GEN_CIVIL_6Y",),
}


def load_policy(
    source: str | os.PathLike[str] | Mapping[str, Any], *, preset: str = "PL"
) -> Policy:
    """Load a JSON policy (path or mapping) and check it against ``preset``'s defaults.

    The defaults (income-tax overlay and books on) give the longest PL periods, so a policy that
    passes here passes for every tenant option. ``RetentionEngine`` checks again against its own
    configuration.
    """
    policy = parse_policy(source)
    RetentionEngine(preset, policy=policy)
    return policy


# --- two-step purge: selection (STYLE §8 convention 21) ---------------------------------------

HOLD_SCOPES = ("customer_ref", "order", "invoice", "all")


@dataclass(frozen=True)
class RecordRef:
    """What the purge selection needs to know about a stored row."""

    kind: str
    id: str
    retain_until: date | None
    customer_ref: str | None = None
    order_id: str | None = None
    invoice_id: str | None = None  # for a correction: the original invoice's id


def select_expired(
    records: Iterable[RecordRef], *, today: date, held: Callable[[RecordRef], bool]
) -> list[RecordRef]:
    """Rows to purge: ``today > retain_until`` and not under a legal hold (input order kept).

    A row is kept THROUGH its retain_until day: the day before and the day itself survive, and
    the day after it is purged. A row without retain_until is never selected (unknown basis
    means keep). Holds are flags that suspend deletion whatever the date (retention.md §0.6).
    """
    return [
        r for r in records if r.retain_until is not None and today > r.retain_until and not held(r)
    ]


def hold_covers(hold_scope: str, hold_value: str | None, ref: RecordRef) -> bool:
    """Whether a legal hold with ``hold_scope``/``hold_value`` covers ``ref``.

    An unknown scope, or a missing value for a scoped hold, raises ValueError. A malformed hold
    then stops the purge rather than letting rows be deleted.
    """
    if hold_scope == "all":
        return True
    if hold_scope not in HOLD_SCOPES:
        raise ValueError(f"unknown legal hold scope {hold_scope!r}; expected one of {HOLD_SCOPES}")
    if not hold_value:
        raise ValueError(f"a {hold_scope!r} legal hold needs a value")
    if hold_scope == "customer_ref":
        return ref.customer_ref == hold_value
    if hold_scope == "order":
        return hold_value == ref.order_id or (ref.kind == "order" and ref.id == hold_value)
    own = ref.kind in ("invoice", "correction_invoice") and ref.id == hold_value
    return hold_value == ref.invoice_id or own


@dataclass(frozen=True)
class LegalHold:
    """An active legal hold (``legal_holds`` row): scope and value."""

    scope: str
    value: str | None = None

    def covers(self, ref: RecordRef) -> bool:
        """Whether this hold covers ``ref`` (see ``hold_covers``)."""
        return hold_covers(self.scope, self.value, ref)


def held_by(holds: Iterable[LegalHold]) -> Callable[[RecordRef], bool]:
    """A ``held`` predicate for ``select_expired`` from the active holds."""
    active = tuple(holds)
    return lambda ref: any(h.covers(ref) for h in active)
