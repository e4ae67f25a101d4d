"""The purge decision, pure: which expired rows are deleted, anonymised, kept or held.

``decide`` takes a ``Snapshot`` of the expired rows and what references them, and answers with a
``PurgePlan``; it reads no database and is unit tested on its own. The retention rules behind
``retain_until`` are in docs/retention-law.md; legal holds suspend deletion (§2.7 there).

An expired row that is not under a legal hold is:

- deleted when nothing that must outlive it references it: a sale invoice after its
  corrections, a refund after the correction citing it, a payment after its refunds, an order
  after all its payments, refunds and invoices;
- if it is an order still referenced: ANONYMISED. Ids, external_ref, customer_ref, amounts,
  status, buyer type and dates stay (retained children need their parent, and a later GDPR
  request must still find them); billing and continue_url are dropped and item names become
  ``ANONYMISED_ITEM`` (quantities, prices, VAT rates stay; the issued invoice keeps the real
  lines), per GDPR art. 5(1)(c),(e) (docs/retention-law.md §5.1). A later run deletes it once
  its children are gone;
- otherwise kept (``kept``) until the rows pointing to it go.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from compliance.holds import RecordRef
from models import Order

__all__ = [
    "ANONYMISED_ITEM",
    "COLUMNS",
    "KINDS",
    "Key",
    "KindPlan",
    "PurgePlan",
    "Snapshot",
    "anonymise_order",
    "decide",
    "is_anonymised",
    "select_expired",
]

# Children before parents: a row's blockers are always decided before the row itself.
KINDS = ("audit_log", "login_attempts", "webhook_events", "invoices")
KINDS += ("refunds", "payments", "orders", "customer_stubs")
COLUMNS = ("eligible", "held", "deleted", "anonymised", "kept")
ANONYMISED_ITEM = "(removed: retention period ended)"

Key = tuple[str, str]  # (plan kind, row id)


@dataclass
class KindPlan:
    """Per record kind: ids expired by date, held, to delete, to anonymise, kept (referenced)."""

    eligible: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    anonymise: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Column counts for the report and the audit entry."""
        ids = (self.eligible, self.held, self.delete, self.anonymise, self.kept)
        return {column: len(i) for column, i in zip(COLUMNS, ids, strict=True)}


@dataclass
class PurgePlan:
    """What a purge as of ``today`` would do; ``blobs`` are the PDF keys it would remove."""

    today: date
    kinds: dict[str, KindPlan]
    blobs: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of rows the plan changes (for a progress bar)."""
        return sum(len(k.delete) + len(k.anonymise) for k in self.kinds.values())

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per kind, in ``KINDS`` order."""
        return {kind: self.kinds[kind].counts() for kind in KINDS}


@dataclass
class Snapshot:
    """Input of ``decide``: candidate rows per kind plus what references them.

    ``blockers[(kind, id)]`` lists every existing row that must be gone before that row may be
    deleted. ``pdf_users[key]`` lists every invoice using a PDF blob (blobs are content-addressed).
    """

    refs: Mapping[str, Sequence[RecordRef]]
    blockers: Mapping[Key, Collection[Key]] = field(default_factory=dict)
    anonymised: Collection[str] = frozenset()
    pdf_of: Mapping[str, str] = field(default_factory=dict)
    pdf_users: Mapping[str, Collection[str]] = field(default_factory=dict)


def select_expired(
    records: Iterable[RecordRef], *, today: date, held: Callable[[RecordRef], bool]
) -> list[RecordRef]:
    """Rows to purge: ``today > retain_until`` and not under a legal hold (input order kept).

    A row is kept THROUGH its retain_until day: the day before and the day itself survive, and
    the day after it is purged. A row without retain_until is never selected (unknown basis
    means keep). Holds are flags that suspend deletion whatever the date
    (docs/retention-law.md §2.7).
    """
    return [
        r for r in records if r.retain_until is not None and today > r.retain_until and not held(r)
    ]


def decide(snap: Snapshot, *, today: date, held: Callable[[RecordRef], bool]) -> PurgePlan:
    """Pure decision: delete, anonymise, keep or skip (held) each expired row."""
    kinds = {kind: KindPlan() for kind in KINDS}
    gone: set[Key] = set()
    for kind in KINDS:
        refs = list(snap.refs.get(kind, ()))
        if kind == "invoices":  # corrections first: they block their originals
            refs.sort(key=lambda r: r.kind != "correction_invoice")
        kp = kinds[kind]
        for ref in select_expired(refs, today=today, held=lambda _r: False):
            kp.eligible.append(ref.id)
            if held(ref):
                kp.held.append(ref.id)
            elif all(b in gone for b in snap.blockers.get((kind, ref.id), ())):
                kp.delete.append(ref.id)
                gone.add((kind, ref.id))
            elif kind == "orders" and ref.id not in snap.anonymised:
                kp.anonymise.append(ref.id)
            else:
                kp.kept.append(ref.id)
    blobs: list[str] = []
    for invoice_id in kinds["invoices"].delete:
        key = snap.pdf_of.get(invoice_id)
        users = snap.pdf_users.get(key, ()) if key else ()
        if key and key not in blobs and all(("invoices", u) in gone for u in users):
            blobs.append(key)
    return PurgePlan(today, kinds, blobs)


def anonymise_order(order: Order) -> None:
    """Drop what identifies the buyer; keep ids, amounts, dates and the line structure."""
    order.billing = None
    order.continue_url = None
    order.items = [{**item, "name": ANONYMISED_ITEM} for item in order.items or []]


def is_anonymised(billing_is_null: bool, continue_url: str | None, items: Any) -> bool:
    """Whether an order row already went through ``anonymise_order``."""
    names = {item.get("name") for item in items or [] if isinstance(item, dict)}
    return billing_is_null and continue_url is None and names <= {ANONYMISED_ITEM}
