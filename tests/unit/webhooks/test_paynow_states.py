"""webhooks/paynow_states.py: the transition table, time travel, and out-of-order delivery."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.paynow_states import Decision, decide, is_final, is_paid

A, S, I = Decision.APPLY, Decision.STALE, Decision.IGNORE  # noqa: E741
ORDER = ("NEW", "PENDING", "CONFIRMED", "REJECTED", "ERROR", "EXPIRED", "ABANDONED")

# The table of docs/protocols/paynow.md (payment statuses), written out independently of the module.
DIRECT = {
    "NEW": {"PENDING", "ERROR", "EXPIRED", "CONFIRMED", "REJECTED"},
    "PENDING": {"CONFIRMED", "REJECTED", "EXPIRED", "ABANDONED"},
    "REJECTED": {"ABANDONED", "CONFIRMED"},
    "ERROR": {"CONFIRMED", "REJECTED", "ABANDONED", "NEW"},
    "CONFIRMED": set(),
    "EXPIRED": set(),
    "ABANDONED": set(),
}
FINAL = {"CONFIRMED", "EXPIRED", "ABANDONED"}

# Expected decision for every (current → new) pair, the new notification being newer.
# Besides the direct table, a status reachable through missed notifications applies too
# (NEW → ABANDONED via PENDING; ERROR → PENDING/EXPIRED via NEW), and CONFIRMED always applies.
EXPECTED = {
    #            NEW PEND CONF REJ ERR EXP ABAN
    "NEW":       (I,  A,   A,   A,  A,  A,  A),
    "PENDING":   (S,  I,   A,   A,  S,  A,  A),
    "CONFIRMED": (S,  S,   I,   S,  S,  S,  S),
    "REJECTED":  (S,  S,   A,   I,  S,  S,  A),
    "ERROR":     (A,  A,   A,   A,  I,  A,  A),
    "EXPIRED":   (S,  S,   A,   S,  S,  I,  S),
    "ABANDONED": (S,  S,   A,   S,  S,  S,  I),
}  # fmt: skip

T1, T2 = "2024-05-01T12:00:00", "2024-05-01T12:00:05"


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [(c, n, EXPECTED[c][ORDER.index(n)]) for c in ORDER for n in ORDER],
)
def test_transition_table(current: str, new: str, expected: Decision) -> None:
    assert decide(current, T1, new, T2) is expected


@pytest.mark.parametrize(("current", "new"), [(c, n) for c in ORDER for n in DIRECT[c]])
def test_every_direct_transition_applies(current: str, new: str) -> None:
    assert decide(current, T1, new, T2) is Decision.APPLY


@pytest.mark.parametrize("new", ORDER)
def test_first_known_status_always_applies(new: str) -> None:
    assert decide(None, None, new, T1) is Decision.APPLY


@pytest.mark.parametrize("new", ["WAITING_FOR_CONFIRMATION", "CANCELLED", "confirmed", ""])
@pytest.mark.parametrize("current", [None, "NEW", "PENDING", "CONFIRMED"])
def test_unknown_status_is_ignored(current: str | None, new: str) -> None:
    assert decide(current, T1, new, T2) is Decision.IGNORE


def test_a_stored_status_this_module_never_applies_counts_as_none() -> None:
    assert decide("SOMETHING_ELSE", T2, "PENDING", T1) is Decision.APPLY


# --- time travel -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new"), [("NEW", "PENDING"), ("PENDING", "EXPIRED"), ("ERROR", "NEW")]
)
def test_older_notification_never_overwrites_a_newer_one(current: str, new: str) -> None:
    assert decide(current, T2, new, T1) is Decision.STALE


@pytest.mark.parametrize("current", ["NEW", "PENDING", "REJECTED", "ERROR", "EXPIRED", "ABANDONED"])
def test_confirmed_is_exempt_from_time_travel(current: str) -> None:
    assert decide(current, T2, "CONFIRMED", T1) is Decision.APPLY


def test_confirmed_again_is_a_no_op_even_when_newer() -> None:
    assert decide("CONFIRMED", T1, "CONFIRMED", T2) is Decision.IGNORE
    assert decide("CONFIRMED", T2, "CONFIRMED", T1) is Decision.IGNORE


def test_same_status_again_is_a_no_op() -> None:
    assert decide("PENDING", T1, "PENDING", T2) is Decision.IGNORE


def test_equal_modified_at_falls_back_to_the_transition_table() -> None:
    assert decide("NEW", T1, "PENDING", T1) is Decision.APPLY
    assert decide("PENDING", T1, "NEW", T1) is Decision.STALE


def test_timestamps_are_compared_as_received_strings() -> None:
    # Fractional seconds sort after the whole second they belong to.
    assert decide("PENDING", "2024-05-01T12:00:00.500", "EXPIRED", "2024-05-01T12:00:00") is S
    assert decide("PENDING", "2024-05-01T12:00:00", "EXPIRED", "2024-05-01T12:00:00.500") is A


@pytest.mark.parametrize(("current_at", "new_at"), [(None, T1), (T1, None), (None, None)])
def test_missing_modified_at_leaves_only_the_transition_table(
    current_at: str | None, new_at: str | None
) -> None:
    assert decide("PENDING", current_at, "EXPIRED", new_at) is Decision.APPLY
    assert decide("PENDING", current_at, "NEW", new_at) is Decision.STALE


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [*ORDER, "WAITING_FOR_CONFIRMATION", None])
def test_is_paid_and_is_final(status: str | None) -> None:
    assert is_paid(status) is (status == "CONFIRMED")
    assert is_final(status) is (status in FINAL)


# --- out-of-order delivery ---------------------------------------------------------------------


@st.composite
def lifecycles(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A valid in-order life of one payment, with strictly increasing modifiedAt.

    It ends in a final status, or may stop early at a status that has not occurred before
    (a payment still waiting). NEW and ERROR can alternate, so the walk is capped and then
    steered to a final status.
    """
    walk = [draw(st.sampled_from(["NEW", "PENDING"]))]  # PENDING first: method preselected
    while walk[-1] not in FINAL:
        if walk.count(walk[-1]) == 1 and draw(st.booleans()):
            break
        options = sorted(DIRECT[walk[-1]])
        if len(walk) >= 10:
            options = [s for s in options if s in FINAL]
        walk.append(draw(st.sampled_from(options)))
    at = datetime(2024, 5, 1, 12, 0, 0)
    stamped = []
    for status in walk:
        at += timedelta(seconds=draw(st.integers(1, 3 * 86400)))
        stamped.append((status, at.strftime("%Y-%m-%dT%H:%M:%S")))
    return stamped


@given(life=lifecycles(), data=st.data())
def test_any_delivery_order_with_duplicates_ends_in_the_in_order_state(
    life: list[tuple[str, str]], data: st.DataObject
) -> None:
    extra = data.draw(st.lists(st.sampled_from(life), max_size=12), label="duplicates")
    deliveries = data.draw(st.permutations(life + extra), label="delivery order")
    current: str | None = None
    current_at: str | None = None
    paid_transitions = 0
    for status, modified_at in deliveries:
        if decide(current, current_at, status, modified_at) is Decision.APPLY:
            paid_transitions += is_paid(status) and not is_paid(current)
            current, current_at = status, modified_at
    assert (current, current_at) == life[-1]
    assert paid_transitions == (1 if any(s == "CONFIRMED" for s, _ in life) else 0)


@given(
    later=st.lists(
        st.tuples(
            st.sampled_from([*ORDER, "CANCELLED"]),
            st.one_of(st.none(), st.sampled_from(["2000-01-01T00:00:00", "2099-12-31T23:59:59"])),
        ),
        max_size=20,
    )
)
def test_nothing_moves_a_confirmed_payment(later: list[tuple[str, str | None]]) -> None:
    for status, modified_at in later:
        assert decide("CONFIRMED", T1, status, modified_at) is not Decision.APPLY
