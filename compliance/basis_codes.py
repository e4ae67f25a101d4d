"""The catalogue of retention basis codes: each stable code, its text and its rule-table row.

A record's ``retention_basis`` column stores one of these codes (tied winners joined with
``+``); ``basis_text`` turns a code back into words for the API, the subject export and
docs/retention.md. The statutes behind the codes are explained in docs/retention-law.md.
Codes are stable: rows tagged years ago must still be described, so a code is never renamed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compliance.policy import POLICY_KINDS, Policy, PolicyRule

__all__ = ["LOG_RULES", "RECORD_KINDS", "RULES", "Rule", "basis_text"]

# Every kind of record that gets a retention tag, in the order of the rule table.
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
        "Kept as long as its correction invoice (VAT Act art. 112; docs/retention-law.md §2.6)",
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
        "event_id kept with the applied payment record (idempotency and audit; "
        "docs/retention-law.md §6)",
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

# Log kinds: (code, rolling days). No statute sets a minimum (docs/retention-law.md §6).
LOG_RULES: dict[str, tuple[str, int]] = {
    "webhook_event": ("GDPR_5_1_E_WEBHOOK_90D", 90),
    "audit_log": ("GDPR_5_1_E_LOG_365D", 365),
    "login_attempt": ("GDPR_5_1_E_LOGIN_90D", 90),
}

_POLICY_CODE = re.compile(r"POLICY_([A-Z_]+)_(\d+)([YD])")


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
