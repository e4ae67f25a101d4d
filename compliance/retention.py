"""Retention engine: which statute keeps a record kind, and until when.

Every record kind gets the MAX over independent rules (docs/retention-law.md §1). The result
carries the winning basis code(s) (``compliance.basis_codes``), a readable text, the date, and
every candidate for the audit field. The date arithmetic is in ``compliance.statutes``; the rule
table generated from this engine is docs/retention.md.

Decisions where the law leaves room are listed in docs/retention-law.md §9 (review them with the
tax adviser / DPO). The ones visible in this module:

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
- Rolling periods count days (``ts + 365 days``, not "12 months"). A timezone-aware timestamp is
  first converted to its UTC date.
- Policy: tax and accounting kinds are statutory MINIMUMS, so the engine takes
  max(statutory, policy); for logs a policy REPLACES the default and may shorten it. A policy
  that would shorten a minimum is rejected by ``compliance.policy_check``.
- Not implemented yet: the PL_OSS preset, the ``loss_year_extension`` tenant option, and the
  optional AML/complaint rules (docs/retention-law.md §2.8).
- Legal holds are flags and not dates (docs/retention-law.md §2.7). The engine never computes
  them; ``compliance.holds`` answers which rows they cover.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from compliance import rule_table
from compliance.basis_codes import LOG_RULES, RECORD_KINDS, RULES, basis_text
from compliance.policy import REPLACEABLE_KINDS, Policy, PolicyError, parse_policy
from compliance.policy_check import check_policy
from compliance.rule_table import Row
from compliance.statutes import (
    day_of,
    de_retain,
    eoy,
    fiscal_year_end,
    pl_acct_retain,
    pl_civil_retain,
    pl_income_retain,
    pl_vat_retain,
    rolling,
)

__all__ = [
    "PRESETS",
    "RECORD_KINDS",
    "Candidate",
    "Policy",
    "PolicyError",
    "Retention",
    "RetentionEngine",
    "Row",
    "load_policy",
]

PRESETS = ("PL", "DE", "generic")


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
            check_policy(self)

    # -- record kinds --

    def invoice(
        self,
        *,
        issue_date: date,
        tax_point: date | None = None,
        ksef_accepted: bool = False,
        corrections: Sequence[Retention] = (),
    ) -> Retention:
        """Sales invoice: max over the enabled rules, extended to each correction.

        A correction extends its original (docs/retention-law.md §2.6).
        """
        issue = day_of(issue_date)
        cands = self._document(issue, tax_point)
        cands += [self._link("LINKED_CORRECTION", c) for c in corrections]
        return self._result(
            "invoice", self._with_policy("invoice", cands, issue), issue, ksef_accepted
        )

    def correction_invoice(
        self, *, issue_date: date, tax_point: date | None = None, ksef_accepted: bool = False
    ) -> Retention:
        """Correction invoice: computed like an invoice from its own period and tax year."""
        issue = day_of(issue_date)
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
        paid = day_of(paid_at)
        anchor = max(paid, day_of(contract_anchor)) if contract_anchor else paid
        cands = self._ledger(paid) + self._civil(anchor, consumer)
        if invoice is not None:
            cands.append(self._link("LINKED_INVOICE", invoice))
        return self._result("payment", self._with_policy("payment", cands, anchor))

    def refund(
        self, *, refunded_at: date, consumer: bool, correction: Retention | None = None
    ) -> Retention:
        """Refund: the payment rule from the refund date, at least as long as its correction."""
        day = day_of(refunded_at)
        cands = self._ledger(day) + self._civil(day, consumer)
        if correction is not None:
            cands.append(self._link("LINKED_CORRECTION", correction))
        return self._result("refund", self._with_policy("refund", cands, day))

    def order(self, *, anchor: date, consumer: bool) -> Retention:
        """Order: anchor = latest of last payment, last refund, account closure."""
        day = day_of(anchor)
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
        """Webhook event row: 90 days after receipt (docs/retention-law.md §6).

        Our ``webhook_events`` row holds only the event key, type, body hash and outcome, not
        the body. The legal retention is on the derived payment/refund row, so the row gets the
        90-day rule. docs/retention-law.md §6 keeps ``event_id`` permanently with the payment
        record. For events that applied a payment transition, use ``webhook_event_linked``.
        """
        day = day_of(received_at)
        return self._result("webhook_event", self._log("webhook_event", day))

    def webhook_event_linked(self, received_at: datetime | date, payment: Retention) -> Retention:
        """Webhook event that produced an applied payment: max(90 days, payment.until).

        The event id stays with the payment it applied (docs/retention-law.md §6).
        """
        day = day_of(received_at)
        cands = [*self._log("webhook_event", day), self._link("LINKED_PAYMENT", payment)]
        return self._result("webhook_event", cands)

    def audit_log(self, *, at: datetime | date) -> Retention:
        """Access/audit log line: 365 days rolling (PCI DSS 10.5.1 benchmark)."""
        return self._result("audit_log", self._log("audit_log", day_of(at)))

    def login_attempt(self, *, at: datetime | date) -> Retention:
        """Login attempt: 90 days rolling."""
        return self._result("login_attempt", self._log("login_attempt", day_of(at)))

    def customer_stub(self, *, erased_at: date, linked: Sequence[Retention]) -> Retention:
        """Pseudonymous stub after erasure: the last linked record's date, else delete at once."""
        day = day_of(erased_at)
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
        return rule_table.table(self)

    def render_table_markdown(self) -> str:
        """The effective table as Markdown (written to docs/retention.md by the CLI)."""
        return rule_table.render_markdown(self)

    def without_policy(self) -> RetentionEngine:
        """The same configuration without the tenant policy: the statutory rules alone."""
        if not self.policy.rules:
            return self
        return RetentionEngine(
            self.preset,
            income_tax_overlay=self.income_tax_overlay,
            books=self.books,
            quarterly_vat=self.quarterly_vat,
            tax_regime=self.tax_regime,
            fiscal_year_end_month=self.fiscal_year_end_month,
        )

    # -- internals --

    def _cand(self, code: str, until: date) -> Candidate:
        return Candidate(code, RULES[code].text, until)

    def _link(self, code: str, linked: Retention) -> Candidate:
        return Candidate(code, RULES[code].text, linked.until, f"{linked.kind}:{linked.code}")

    def _fy_end(self, day: date) -> date:
        return fiscal_year_end(day, self.fiscal_year_end_month)

    def _document(self, issue: date, tax_point: date | None) -> list[Candidate]:
        if self.preset == "PL":
            tp = day_of(tax_point) if tax_point is not None else issue
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
        if self.preset != "PL":  # DE/generic: voucher rule only (retention-law.md §3, §4)
            return []
        code = "PL_KC_118" if consumer else "PL_KC_118_B2B"
        return [self._cand(code, pl_civil_retain(anchor, consumer))]

    def _de(self, day: date, code: str) -> Candidate:
        until = de_retain(day)
        return self._cand(code if until.year == day.year + 8 else "DE_AO_147_OLD_10Y", until)

    def _log(self, kind: str, day: date) -> list[Candidate]:
        code, days = LOG_RULES[kind]
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
