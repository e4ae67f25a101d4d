"""The PayNow payment state machine (see docs/protocols/paynow.md, payment statuses).

PayNow redelivers notifications and does not keep them in order. `decide` says whether a
notification may change the stored status; the caller holds the row lock and applies it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from models.enums import PaynowPaymentStatus

__all__ = ["FINAL", "TRANSITIONS", "Decision", "decide", "is_final", "is_known", "is_paid"]


class Decision(enum.StrEnum):
    APPLY = "apply"  # store the new status and modifiedAt
    STALE = "stale"  # older than what is stored, or a move the payment cannot make
    IGNORE = "ignore"  # unknown status, or the status the payment already has


S = PaynowPaymentStatus
# Direct transitions, as in the vendor's WooCommerce plugin.
TRANSITIONS: Mapping[PaynowPaymentStatus, frozenset[PaynowPaymentStatus]] = MappingProxyType(
    {
        S.NEW: frozenset({S.PENDING, S.ERROR, S.EXPIRED, S.CONFIRMED, S.REJECTED}),
        S.PENDING: frozenset({S.CONFIRMED, S.REJECTED, S.EXPIRED, S.ABANDONED}),
        S.REJECTED: frozenset({S.ABANDONED, S.CONFIRMED}),
        S.ERROR: frozenset({S.CONFIRMED, S.REJECTED, S.ABANDONED, S.NEW}),
        S.CONFIRMED: frozenset(),
        S.EXPIRED: frozenset(),
        S.ABANDONED: frozenset(),
    }
)
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def _reachable(start: PaynowPaymentStatus) -> frozenset[PaynowPaymentStatus]:
    seen: set[PaynowPaymentStatus] = set()
    todo = list(TRANSITIONS[start])
    while todo:
        status = todo.pop()
        if status not in seen:
            seen.add(status)
            todo.extend(TRANSITIONS[status])
    return frozenset(seen)


# Moves are checked against reachability, not just the direct table: when a notification in the
# middle is late or lost (NEW, then ABANDONED before PENDING/REJECTED), the newer one must apply.
_REACHABLE = {status: _reachable(status) for status in PaynowPaymentStatus}


def decide(
    current: str | None,
    current_modified_at: str | None,
    new: str,
    new_modified_at: str | None,
) -> Decision:
    """Whether a notification (`new`, `new_modified_at`) may replace the stored status.

    - unknown `new` → IGNORE (recorded by the caller, never applied);
    - no stored status (`current` None, or a value this module never applies) → APPLY;
    - the same status again → IGNORE, so CONFIRMED is applied (and invoiced) once;
    - CONFIRMED → APPLY always: the money has arrived, whatever came before (vendor plugins);
    - an older `modifiedAt` → STALE; values are compared as the ISO strings PayNow sent, which
      is sound only within one payment;
    - otherwise APPLY if `new` can follow `current`, else STALE.
    """
    if new not in _REACHABLE:
        return Decision.IGNORE
    if current not in _REACHABLE:
        return Decision.APPLY
    if new == current:
        return Decision.IGNORE
    if new == PaynowPaymentStatus.CONFIRMED:
        return Decision.APPLY
    if None not in (current_modified_at, new_modified_at) and new_modified_at < current_modified_at:
        return Decision.STALE
    return Decision.APPLY if new in _REACHABLE[PaynowPaymentStatus(current)] else Decision.STALE


def is_known(status: str) -> bool:
    """True for the statuses of the PayNow v3 documentation; others are recorded, never applied."""
    return status in _REACHABLE


def is_paid(status: str | None) -> bool:
    """True for CONFIRMED, the only status in which PayNow has taken the money."""
    return status == PaynowPaymentStatus.CONFIRMED


def is_final(status: str | None) -> bool:
    """True for CONFIRMED, EXPIRED and ABANDONED; REJECTED and ERROR can still change."""
    return status in FINAL
