"""The pure purge decision: dates, holds, what blocks a deletion, anonymisation, PDFs."""

from datetime import date, timedelta

import pytest

from compliance.holds import LegalHold, RecordRef, held_by
from compliance.purge_plan import (
    ANONYMISED_ITEM,
    KINDS,
    Snapshot,
    decide,
    is_anonymised,
    select_expired,
)

D = date
UNTIL = date(2032, 12, 31)
BEFORE, ON, AFTER = date(2032, 12, 30), UNTIL, date(2033, 1, 1)
NOBODY = held_by([])


def order_tree(until: date = UNTIL) -> Snapshot:
    """One order with a payment, a refund, a sale invoice and its correction (all expired)."""
    refs = {
        "orders": [RecordRef("order", "o1", until, "c1", "o1", "i1")],
        "payments": [RecordRef("payment", "p1", until, "c1", "o1", "i1")],
        "refunds": [RecordRef("refund", "r1", until, "c1", "o1", "i1")],
        "invoices": [
            RecordRef("invoice", "i1", until, "c1", "o1", None),
            RecordRef("correction_invoice", "k1", until, "c1", "o1", "i1"),
        ],
    }
    blockers = {
        ("orders", "o1"): [
            ("payments", "p1"),
            ("refunds", "r1"),
            ("invoices", "i1"),
            ("invoices", "k1"),
        ],
        ("payments", "p1"): [("refunds", "r1")],
        ("refunds", "r1"): [("invoices", "k1")],
        ("invoices", "i1"): [("invoices", "k1")],
    }
    pdfs = {"i1": "sha256:" + "a" * 64, "k1": "sha256:" + "b" * 64}
    users = {key: [iid] for iid, key in pdfs.items()}
    return Snapshot(refs, blockers, pdf_of=pdfs, pdf_users=users)


@pytest.mark.parametrize(("today", "purged"), [(BEFORE, False), (ON, False), (AFTER, True)])
def test_rows_are_kept_through_retain_until_and_purged_the_day_after(today, purged) -> None:
    refs = {"audit_log": [RecordRef("audit_log", "a1", UNTIL)]}
    plan = decide(Snapshot(refs), today=today, held=NOBODY)
    assert plan.kinds["audit_log"].delete == (["a1"] if purged else [])
    assert plan.kinds["audit_log"].eligible == (["a1"] if purged else [])


def test_whole_order_tree_goes_children_first_with_both_pdfs() -> None:
    plan = decide(order_tree(), today=AFTER, held=NOBODY)
    assert plan.kinds["invoices"].delete == ["k1", "i1"]  # the correction before its original
    assert plan.kinds["refunds"].delete == ["r1"]
    assert plan.kinds["payments"].delete == ["p1"]
    assert plan.kinds["orders"].delete == ["o1"]
    assert plan.kinds["orders"].anonymise == []
    assert sorted(plan.blobs) == ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
    assert plan.total == 5


def test_a_correction_kept_longer_keeps_its_original_refund_payment_and_order() -> None:
    snap = order_tree()
    snap.refs["invoices"][1] = RecordRef(
        "correction_invoice", "k1", date(2033, 12, 31), "c1", "o1", "i1"
    )
    plan = decide(snap, today=AFTER, held=NOBODY)
    assert plan.kinds["invoices"].delete == []
    assert plan.kinds["invoices"].kept == ["i1"]
    assert plan.kinds["refunds"].kept == ["r1"]
    assert plan.kinds["payments"].kept == ["p1"]
    # The order's own period is over, but retained rows still point to it.
    assert plan.kinds["orders"].anonymise == ["o1"]
    assert plan.blobs == []


def test_an_already_anonymised_order_is_not_anonymised_again() -> None:
    snap = order_tree()
    snap.refs["invoices"][1] = RecordRef(
        "correction_invoice", "k1", date(2033, 12, 31), "c1", "o1", "i1"
    )
    snap.anonymised = {"o1"}
    plan = decide(snap, today=AFTER, held=NOBODY)
    assert plan.kinds["orders"].anonymise == []
    assert plan.kinds["orders"].kept == ["o1"]
    assert plan.total == 0


@pytest.mark.parametrize(
    "hold",
    [
        LegalHold("customer_ref", "c1"),
        LegalHold("order", "o1"),
        LegalHold("invoice", "i1"),
        LegalHold("all"),
    ],
)
def test_each_hold_scope_skips_the_whole_tree(hold) -> None:
    plan = decide(order_tree(), today=AFTER, held=held_by([hold]))
    counts = plan.counts()
    for kind in ("orders", "payments", "refunds", "invoices"):
        assert counts[kind]["deleted"] == 0, kind
        assert counts[kind]["held"] == counts[kind]["eligible"] > 0, kind
    assert plan.blobs == []


def test_a_hold_on_another_customer_changes_nothing() -> None:
    held = decide(order_tree(), today=AFTER, held=held_by([LegalHold("customer_ref", "c2")]))
    free = decide(order_tree(), today=AFTER, held=NOBODY)
    assert held.counts() == free.counts()


def test_released_hold_means_eligible_again() -> None:
    # A released hold is simply absent from the active holds passed in.
    with_hold = decide(order_tree(), today=AFTER, held=held_by([LegalHold("order", "o1")]))
    released = decide(order_tree(), today=AFTER, held=held_by([]))
    assert with_hold.total == 0
    assert released.total == 5


def test_held_correction_keeps_its_original_but_not_unrelated_logs() -> None:
    snap = order_tree()
    snap.refs["audit_log"] = [RecordRef("audit_log", "a1", UNTIL)]
    plan = decide(snap, today=AFTER, held=held_by([LegalHold("invoice", "k1")]))
    assert plan.kinds["invoices"].held == ["k1"]
    assert plan.kinds["invoices"].kept == ["i1"]
    assert plan.kinds["audit_log"].delete == ["a1"]


def test_a_pdf_shared_with_a_surviving_invoice_stays() -> None:
    key = "sha256:" + "c" * 64
    snap = Snapshot(
        {"invoices": [RecordRef("invoice", "i1", UNTIL)]},
        pdf_of={"i1": key},
        pdf_users={key: ["i1", "i2"]},
    )
    plan = decide(snap, today=AFTER, held=NOBODY)
    assert plan.kinds["invoices"].delete == ["i1"]
    assert plan.blobs == []


def test_undated_rows_are_never_selected() -> None:
    refs = {kind: [RecordRef("order", f"{kind}-1", None)] for kind in KINDS}
    plan = decide(Snapshot(refs), today=date(2100, 1, 1), held=NOBODY)
    assert all(c["eligible"] == 0 for c in plan.counts().values())


def test_counts_cover_every_kind_in_order() -> None:
    plan = decide(order_tree(), today=AFTER, held=NOBODY)
    assert list(plan.counts()) == list(KINDS)
    assert plan.counts()["orders"] == {
        "eligible": 1,
        "held": 0,
        "deleted": 1,
        "anonymised": 0,
        "kept": 0,
    }


def test_is_anonymised_recognises_only_fully_anonymised_orders() -> None:
    done = [{"name": ANONYMISED_ITEM, "quantity": 1}]
    assert is_anonymised(True, None, done)
    assert not is_anonymised(False, None, done)
    assert not is_anonymised(True, "https://shop.example/return", done)
    assert not is_anonymised(True, None, [{"name": "Pro plan", "quantity": 1}])


# --- select_expired: the date step of the decision ----------------------------------------


def test_select_expired_boundaries():
    until = D(2032, 12, 31)
    rows = [RecordRef("invoice", str(i), until) for i in range(3)]
    never = lambda _: False  # noqa: E731
    assert select_expired(rows, today=until - timedelta(days=1), held=never) == []
    assert select_expired(rows, today=until, held=never) == []  # kept through the day itself
    assert select_expired(rows, today=until + timedelta(days=1), held=never) == rows


def test_select_expired_skips_held_and_undated_rows_and_keeps_order():
    a = RecordRef("payment", "a", D(2030, 1, 1), customer_ref="cus_1")
    b = RecordRef("payment", "b", D(2030, 1, 1), customer_ref="cus_2")
    c = RecordRef("payment", "c", None)
    d = RecordRef("order", "d", D(2029, 1, 1))
    held = held_by([LegalHold("customer_ref", "cus_1")])
    assert select_expired([d, a, b, c], today=D(2031, 1, 1), held=held) == [d, b]


def test_held_predicate_is_only_asked_about_expired_rows():
    asked = []
    rows = [RecordRef("order", "old", D(2020, 1, 1)), RecordRef("order", "new", D(2040, 1, 1))]
    select_expired(rows, today=D(2030, 1, 1), held=lambda r: asked.append(r.id) or False)
    assert asked == ["old"]
