"""Why a record is kept after a GDPR erasure request: the art. 17(3) ground and the statute.

A record kept against an erasure request is restricted (docs/retention-law.md §5.3) and carries
a short reason: GDPR art. 17(3)(b) when a legal obligation keeps it (tax, VAT and accounting
rules), 17(3)(e) when only legal claims do (Civil Code art. 118), or the rolling log window
for logs, which are never extended by a request (§5.6 step 5).
"""

from __future__ import annotations

from compliance.retention import RetentionEngine

__all__ = ["LOG_WINDOW_REASON", "REASON_MAX", "clip", "restriction_reason"]

REASON_MAX = 255  # restriction_reason column
# Logs keep their short rolling window, not extended by a request (retention-law.md §5.6).
LOG_WINDOW_REASON = "rolling log window (GDPR art. 5(1)(e), 6(1)(f)); not extended"
# Codes that rest on a legal obligation (GDPR art. 17(3)(b)); everything else kept for a
# record of ours rests on legal claims (art. 17(3)(e), Civil Code art. 118).
_OBLIGATION_PREFIXES = (
    "PL_VAT",
    "PL_OP",
    "PL_UOR",
    "DE_",
    "GEN_VAT",
    "GEN_ACCT",
    "LINKED_CORRECTION",
    "LINKED_INVOICE",
)


def restriction_reason(engine: RetentionEngine, code: str | None) -> str:
    """Why a record is kept after an erasure request: the art. 17(3) ground and the statute."""
    if not code:
        return "GDPR art. 17(3)(b): retention basis not established yet"
    parts = code.split("+")
    if all(p.startswith("GDPR_5_1_E") for p in parts):
        return LOG_WINDOW_REASON  # a log, not an art. 17(3) exemption
    if any(p.startswith(_OBLIGATION_PREFIXES) for p in parts):
        ground = "17(3)(b)"
    elif "LINKED_PAYMENT" in parts:
        ground = "17(3)(b),(e)"  # the event id follows its payment's own ground
    else:
        ground = "17(3)(e)"
    try:
        text = engine.describe(code)
    except KeyError:
        text = code
    return clip(f"GDPR art. {ground}: {text}")


def clip(text: str, limit: int = REASON_MAX) -> str:
    """Shorten ``text`` to fit a column, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
