"""Legal holds: placing and releasing them, and which records they cover (one implementation).

A hold is a flag that suspends deletion, not a new date (docs/retention-law.md §2.7: Tax
Ordinance art. 70 §2-§6, Civil Code art. 123; §3 for the German Ablaufhemmung). An operator
places it with a reason and a reference; while it is active the purge skips every record it
covers and a GDPR erasure restricts those records instead of deleting them. Releasing it makes
them eligible again by their own ``retain_until``.

Which records a hold covers, by scope:

- ``all``: every record.
- ``customer_ref``: every record of that customer's orders.
- ``order``: the order and its payments, refunds, invoices and webhook events.
- ``invoice``: the invoice itself, its corrections, and the payments, refunds, events and order
  of its order. A correction inherits its original's hold: its original is
  ``corrects_invoice_id``, or, before that is filled in at build time, the order's sale invoice
  (the only invoice a correction can correct).

The purge, the subject erasure and the invoices API all ask ``hold_covers`` through the
``RecordRef`` of a row; ``held_invoice_ids`` answers it for a page of invoices in two queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from models import HoldScope, Invoice, InvoiceKind, Order
from models import LegalHold as HoldRow

__all__ = [
    "HOLD_SCOPES",
    "HoldError",
    "LegalHold",
    "RecordRef",
    "active_holds",
    "held_by",
    "held_ids",
    "held_invoice_ids",
    "hold_covers",
    "invoice_ref",
    "place_hold",
    "release_hold",
]

HOLD_SCOPES = ("customer_ref", "order", "invoice", "all")
_INVOICE_KINDS = ("invoice", "correction_invoice")
_CHUNK = 500


class HoldError(Exception):
    """A hold cannot be placed or released; ``reason`` says why.

    Reasons: ``not_found``, ``already_released``, ``value_required``, ``value_not_allowed``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RecordRef:
    """What hold matching and the purge selection need to know about a stored row."""

    kind: str
    id: str
    retain_until: date | None
    customer_ref: str | None = None
    order_id: str | None = None
    invoice_id: str | None = None  # the order's sale invoice; for a correction: its original


@dataclass(frozen=True)
class LegalHold:
    """An active legal hold (``legal_holds`` row): scope and value."""

    scope: str
    value: str | None = None

    def covers(self, ref: RecordRef) -> bool:
        """Whether this hold covers ``ref`` (see ``hold_covers``)."""
        return hold_covers(self.scope, self.value, ref)


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
    own = ref.kind in _INVOICE_KINDS and ref.id == hold_value
    return hold_value == ref.invoice_id or own


def held_by(holds: Iterable[LegalHold]) -> Callable[[RecordRef], bool]:
    """A ``held`` predicate (for the purge decision and the erasure) from the active holds."""
    active = tuple(holds)
    return lambda ref: any(h.covers(ref) for h in active)


def held_ids(holds: Iterable[LegalHold], refs: Iterable[RecordRef]) -> set[str]:
    """Ids of the ``refs`` that any of ``holds`` covers."""
    held = held_by(holds)
    return {ref.id for ref in refs if held(ref)}


def active_holds(session: Session) -> list[LegalHold]:
    """The legal holds not released yet (released holds no longer suspend deletion)."""
    rows = session.execute(
        sa.select(HoldRow.scope, HoldRow.scope_value).where(HoldRow.released_at.is_(None))
    )
    return [LegalHold(scope.value, value) for scope, value in rows]


def invoice_ref(
    invoice_id: str,
    kind: InvoiceKind,
    retain_until: date | None,
    *,
    order_id: str,
    customer_ref: str | None,
    corrects_invoice_id: str | None,
    sale_invoice_id: str | None,
) -> RecordRef:
    """The ``RecordRef`` of an invoice row; a correction points at its original."""
    if kind is InvoiceKind.CORRECTION:
        original = corrects_invoice_id or sale_invoice_id
        return RecordRef(
            "correction_invoice", invoice_id, retain_until, customer_ref, order_id, original
        )
    return RecordRef("invoice", invoice_id, retain_until, customer_ref, order_id)


def held_invoice_ids(session: Session, invoices: Sequence[Invoice]) -> set[str]:
    """Which of these invoices an active legal hold covers (any scope).

    One query for the holds and, when there are any, one per 500 orders for the customer_refs
    and sale invoices of the invoices' orders: a page of invoices costs two queries, not one per
    invoice.
    """
    holds = active_holds(session)
    if not holds or not invoices:
        return set()
    context = _order_context(session, sorted({i.order_id for i in invoices}))
    refs = [
        invoice_ref(
            i.id,
            i.kind,
            i.retain_until,
            order_id=i.order_id,
            customer_ref=context[i.order_id][0],
            corrects_invoice_id=i.corrects_invoice_id,
            sale_invoice_id=context[i.order_id][1],
        )
        for i in invoices
    ]
    return held_ids(holds, refs)


def _order_context(session: Session, order_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Order id → (customer_ref, sale invoice id or None)."""
    sale = aliased(Invoice)
    out: dict[str, tuple[str, str | None]] = {}
    for i in range(0, len(order_ids), _CHUNK):
        stmt = (
            sa.select(Order.id, Order.customer_ref, sale.id)
            .outerjoin(sale, sa.and_(sale.order_id == Order.id, sale.kind == InvoiceKind.SALE))
            .where(Order.id.in_(order_ids[i : i + _CHUNK]))
        )
        out.update({oid: (customer, sale_id) for oid, customer, sale_id in session.execute(stmt)})
    return out


# --- placing and releasing -------------------------------------------------------------------


def place_hold(
    session: Session,
    *,
    scope: str,
    value: str | None,
    reason: str,
    reference: str | None,
    actor: str,
    now: datetime,
) -> HoldRow:
    """Put the records of ``scope``/``value`` on legal hold. Flushes; the caller commits."""
    if scope == HoldScope.ALL.value and value:
        raise HoldError("An `all` hold takes no value.", reason="value_not_allowed")
    if scope != HoldScope.ALL.value and not value:
        raise HoldError(f"A `{scope}` hold needs a value.", reason="value_required")
    hold = HoldRow(
        scope=HoldScope(scope),
        scope_value=value,
        reason=reason.strip(),
        reference=reference,
        created_by=actor,
        created_at=now,
    )
    session.add(hold)
    session.flush()
    return hold


def release_hold(session: Session, hold_id: str, *, actor: str, now: datetime) -> HoldRow:
    """Release a hold; its records become eligible again by their own dates.

    Releasing a released hold raises ``HoldError`` (``already_released``): the first release
    (who and when) is never overwritten. The row is locked so two releases cannot both win.
    """
    hold = session.get(HoldRow, hold_id, with_for_update=True)
    if hold is None:
        raise HoldError(f"No legal hold {hold_id!r}.", reason="not_found")
    if hold.released_at is not None:
        raise HoldError(
            f"Legal hold {hold_id!r} was already released at {hold.released_at.isoformat()} "
            f"by {hold.released_by}.",
            reason="already_released",
        )
    hold.released_at = now
    hold.released_by = actor
    return hold
