"""Retention purge in two steps (STYLE §8.21): ``plan`` selects, ``execute`` deletes.

``plan`` reads the rows whose ``retain_until`` has passed and the active legal holds, and
decides per row with the pure ``decide``. ``execute`` carries the plan out and removes the
PDFs of purged invoices once the transaction has committed.

An expired row that is not under a legal hold (retention.md §0.6) is:

- deleted when nothing that must outlive it references it: a sale invoice after its
  corrections, a refund after the correction citing it, a payment after its refunds, an order
  after all its payments, refunds and invoices;
- if it is an order still referenced: ANONYMISED. Ids, external_ref, customer_ref, amounts,
  status, buyer type and dates stay (retained children need their parent, and a later GDPR
  request must still find them); billing and continue_url are dropped and item names become
  ``ANONYMISED_ITEM`` (quantities, prices, VAT rates stay; the issued invoice keeps the real
  lines), per GDPR art. 5(1)(c),(e). A later run deletes it once its children are gone;
- otherwise kept (``kept``) until the rows pointing to it go.

Rows without ``retain_until`` are never selected (unknown basis means keep). Given an engine,
log rows written before they were tagged (audit log, login attempts, webhook events that
applied nothing) get their default rule from their timestamp, so they cannot live forever.
A second run does nothing more: deleted rows are gone and anonymised orders are recognised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.retention import LegalHold, RecordRef, RetentionEngine, held_by, select_expired
from models import (
    AuditEntry,
    CustomerStub,
    EventOutcome,
    Invoice,
    InvoiceKind,
    LoginAttempt,
    Order,
    OutboxItem,
    Payment,
    Refund,
    WebhookEvent,
)
from models import LegalHold as HoldRow
from models.blobs import BlobStore

__all__ = [
    "ANONYMISED_ITEM",
    "COLUMNS",
    "KINDS",
    "KindPlan",
    "PurgePlan",
    "PurgeReport",
    "Snapshot",
    "active_holds",
    "decide",
    "execute",
    "is_anonymised",
    "plan",
    "snapshot",
]

log = logging.getLogger("kwit.retention")

# Children before parents: a row's blockers are always decided before the row itself.
KINDS = ("audit_log", "login_attempts", "webhook_events", "invoices")
KINDS += ("refunds", "payments", "orders", "customer_stubs")
COLUMNS = ("eligible", "held", "deleted", "anonymised", "kept")
ANONYMISED_ITEM = "(removed: retention period ended)"
_CHUNK = 500

Key = tuple[str, str]  # (plan kind, row id)
_INVOICE_KINDS = {InvoiceKind.SALE: "invoice", InvoiceKind.CORRECTION: "correction_invoice"}


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
class PurgeReport:
    """What a run did (or, for a dry run, would do)."""

    today: date
    dry_run: bool
    counts: dict[str, dict[str, int]]
    blobs: list[str]
    blobs_deleted: int = 0

    @classmethod
    def from_plan(cls, plan: PurgePlan, *, dry_run: bool) -> PurgeReport:
        """The report of ``plan``: the same counts whether or not it is carried out."""
        return cls(plan.today, dry_run, plan.counts(), list(plan.blobs))

    def total(self, column: str) -> int:
        """Sum of one column over all kinds."""
        return sum(c[column] for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the audit entry's details)."""
        return {
            "as_of": self.today.isoformat(),
            "dry_run": self.dry_run,
            "counts": self.counts,
            "pdf_blobs": len(self.blobs),
        }


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


def active_holds(session: Session) -> list[LegalHold]:
    """The legal holds not released yet (released holds no longer suspend deletion)."""
    rows = session.execute(
        sa.select(HoldRow.scope, HoldRow.scope_value).where(HoldRow.released_at.is_(None))
    )
    return [LegalHold(scope.value, value) for scope, value in rows]


def plan(session: Session, engine: RetentionEngine | None, *, today: date) -> PurgePlan:
    """Select what a purge as of ``today`` deletes or anonymises; changes nothing."""
    return decide(
        snapshot(session, engine, today=today), today=today, held=held_by(active_holds(session))
    )


def execute(
    session: Session,
    blobs: BlobStore,
    plan: PurgePlan,
    *,
    progress: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Delete and anonymise as planned (flushes; the caller commits), then drop the PDFs.

    The PDFs are removed only after the session's transaction commits, so a failed commit never
    leaves a surviving invoice without its PDF; after a rollback they stay.
    """
    step = progress or (lambda _n: None)
    k = plan.kinds
    _delete(session, WebhookEvent, WebhookEvent.id, k["webhook_events"].delete, step)
    # Corrections come first in the plan, so no chunk removes an original before its correction.
    _delete(session, Invoice, Invoice.id, k["invoices"].delete, step)
    _delete(session, OutboxItem, OutboxItem.ref_id, k["invoices"].delete, lambda _n: None)
    _delete(session, Refund, Refund.id, k["refunds"].delete, step)
    _delete(session, Payment, Payment.id, k["payments"].delete, step)
    _delete(session, Order, Order.id, k["orders"].delete, step)
    for chunk in _chunks(k["orders"].anonymise):
        for order in session.scalars(sa.select(Order).where(Order.id.in_(chunk))):
            anonymise_order(order)
        step(len(chunk))
    _delete(session, AuditEntry, AuditEntry.id, k["audit_log"].delete, step)
    _delete(session, LoginAttempt, LoginAttempt.id, k["login_attempts"].delete, step)
    _delete(session, CustomerStub, CustomerStub.customer_ref, k["customer_stubs"].delete, step)
    session.flush()
    report = PurgeReport.from_plan(plan, dry_run=False)
    if plan.blobs:
        _after_commit(session, lambda: _drop_blobs(blobs, report))
    log.info("retention purge", extra={"as_of": plan.today.isoformat(), "counts": report.counts})
    return report


def anonymise_order(order: Order) -> None:
    """Drop what identifies the buyer; keep ids, amounts, dates and the line structure."""
    order.billing = None
    order.continue_url = None
    order.items = [{**item, "name": ANONYMISED_ITEM} for item in order.items or []]


def is_anonymised(billing_is_null: bool, continue_url: str | None, items: Any) -> bool:
    """Whether an order row already went through ``anonymise_order``."""
    names = {item.get("name") for item in items or [] if isinstance(item, dict)}
    return billing_is_null and continue_url is None and names <= {ANONYMISED_ITEM}


# --- loading -------------------------------------------------------------------------------


def snapshot(session: Session, engine: RetentionEngine | None, *, today: date) -> Snapshot:
    """Expired candidates per kind and everything that references them."""
    refs: dict[str, list[RecordRef]] = {}
    blockers: dict[Key, list[Key]] = {}
    refs["audit_log"] = _logs(session, AuditEntry, "audit_log", engine, today)
    refs["login_attempts"] = _logs(session, LoginAttempt, "login_attempt", engine, today)
    refs["webhook_events"] = _events(session, engine, today)

    cols = _cols(Invoice, "id kind retain_until order_id corrects_invoice_id pdf_key")
    inv = session.execute(
        sa.select(*cols, Order.customer_ref)
        .join(Order, Order.id == Invoice.order_id)
        .where(Invoice.retain_until < today)
    ).all()
    refs["invoices"] = [
        RecordRef(_INVOICE_KINDS[kind], iid, until, customer, order_id, corrects)
        for iid, kind, until, order_id, corrects, _pdf, customer in inv
    ]
    ids = [r[0] for r in inv]
    _block(session, blockers, "invoices", ids, "invoices", Invoice.corrects_invoice_id, Invoice.id)
    pdf_of = {r[0]: r[5] for r in inv if r[5]}
    pdf_users: dict[str, list[str]] = {}
    for key, iid in _pairs(session, Invoice.pdf_key, Invoice.id, list(set(pdf_of.values()))):
        pdf_users.setdefault(key, []).append(iid)

    for kind, model, record_kind in (
        ("refunds", Refund, "refund"),
        ("payments", Payment, "payment"),
    ):
        rows = session.execute(
            sa.select(model.id, model.retain_until, model.order_id, Order.customer_ref)
            .join(Order, Order.id == model.order_id)
            .where(model.retain_until < today)
        ).all()
        sale = _sale_invoices(session, {r[2] for r in rows})
        refs[kind] = [RecordRef(record_kind, i, u, c, o, sale.get(o)) for i, u, o, c in rows]
    refund_ids, payment_ids = [r.id for r in refs["refunds"]], [r.id for r in refs["payments"]]
    _block(session, blockers, "refunds", refund_ids, "invoices", Invoice.refund_id, Invoice.id)
    _block(session, blockers, "payments", payment_ids, "refunds", Refund.payment_id, Refund.id)

    cols = _cols(Order, "id retain_until customer_ref continue_url items")
    no_billing = Order.billing.is_(None)
    orders = session.execute(sa.select(*cols, no_billing).where(Order.retain_until < today)).all()
    sale = _sale_invoices(session, {r[0] for r in orders})
    refs["orders"] = [RecordRef("order", o, u, c, o, sale.get(o)) for o, u, c, *_ in orders]
    order_ids = [r[0] for r in orders]
    for child, model in (("payments", Payment), ("refunds", Refund), ("invoices", Invoice)):
        _block(session, blockers, "orders", order_ids, child, model.order_id, model.id)
    anonymised = {o for o, _u, _c, url, items, nb in orders if is_anonymised(nb, url, items)}

    stubs = session.execute(
        sa.select(CustomerStub.customer_ref, CustomerStub.retain_until).where(
            CustomerStub.retain_until < today
        )
    ).all()
    refs["customer_stubs"] = [RecordRef("customer_stub", c, u, customer_ref=c) for c, u in stubs]
    return Snapshot(refs, blockers, anonymised, pdf_of, pdf_users)


def _logs(
    session: Session, model: Any, kind: str, engine: RetentionEngine | None, today: date
) -> list[RecordRef]:
    due = model.retain_until < today
    where = sa.or_(due, model.retain_until.is_(None)) if engine else due
    rows = session.execute(sa.select(model.id, model.retain_until, model.at).where(where))
    rule = None if engine is None else getattr(engine, kind)
    return [RecordRef(kind, i, u if u is not None else rule(at=at).until) for i, u, at in rows]


def _events(session: Session, engine: RetentionEngine | None, today: date) -> list[RecordRef]:
    due = WebhookEvent.retain_until < today
    if engine is not None:
        # An untagged event that applied a transition waits for retag_order to link it.
        untagged = sa.and_(
            WebhookEvent.retain_until.is_(None), WebhookEvent.outcome != EventOutcome.APPLIED
        )
        due = sa.or_(due, untagged)
    cols = _cols(WebhookEvent, "id retain_until received_at order_id")
    rows = session.execute(
        sa.select(*cols, Order.customer_ref)
        .outerjoin(Order, Order.id == WebhookEvent.order_id)
        .where(due)
    ).all()
    sale = _sale_invoices(session, {r[3] for r in rows if r[3]})
    out = []
    for eid, until, received, order_id, customer in rows:
        if until is None and engine is not None:
            until = engine.webhook_event(received_at=received).until
        out.append(RecordRef("webhook_event", eid, until, customer, order_id, sale.get(order_id)))
    return out


def _cols(model: Any, names: str) -> list[Any]:
    return [getattr(model, name) for name in names.split()]


def _sale_invoices(session: Session, order_ids: Iterable[str]) -> dict[str, str]:
    """Order id → its sale invoice id (a hold on the invoice covers the order's records)."""
    pairs = _pairs(
        session, Invoice.order_id, Invoice.id, list(order_ids), Invoice.kind == InvoiceKind.SALE
    )
    return dict(pairs)


def _pairs(
    session: Session, key: Any, value: Any, keys: Sequence[Any], *extra: Any
) -> list[tuple[Any, Any]]:
    """(key, value) rows with key IN keys, in chunks (bounded IN lists)."""
    out: list[tuple[Any, Any]] = []
    for chunk in _chunks(keys):
        out.extend(
            (k, v) for k, v in session.execute(sa.select(key, value).where(key.in_(chunk), *extra))
        )
    return out


def _block(
    session: Session,
    blockers: dict[Key, list[Key]],
    kind: str,
    ids: Sequence[str],
    child: str,
    fk: Any,
    pk: Any,
) -> None:
    """Record that rows of ``child`` (``fk`` pointing at ``ids``) block deleting those ids."""
    for parent_id, child_id in _pairs(session, fk, pk, ids):
        blockers.setdefault((kind, parent_id), []).append((child, child_id))


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


# --- executing -----------------------------------------------------------------------------


def _delete(
    session: Session, model: Any, column: Any, ids: Sequence[str], step: Callable[[int], None]
) -> None:
    for chunk in _chunks(ids):
        session.execute(
            sa.delete(model).where(column.in_(chunk)),
            execution_options={"synchronize_session": "fetch"},
        )
        step(len(chunk))


def _drop_blobs(blobs: BlobStore, report: PurgeReport) -> None:
    for key in report.blobs:
        try:
            report.blobs_deleted += bool(blobs.delete(key))
        except OSError:
            # The row is gone already; an orphaned PDF is logged, never a reason to fail.
            log.exception("could not delete invoice PDF", extra={"blob": key})


def _after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's current transaction commits (not after a rollback)."""
    state = {"done": False}

    def committed(_session: Session) -> None:
        if not state["done"]:
            state["done"] = True
            action()

    def rolled_back(_session: Session) -> None:
        state["done"] = True

    sa.event.listen(session, "after_commit", committed, once=True)
    sa.event.listen(session, "after_rollback", rolled_back, once=True)
