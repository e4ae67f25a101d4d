"""The purge's reading step: the expired rows and everything that references them.

``snapshot`` turns the database into the plain ``Snapshot`` that ``compliance.purge_plan.decide``
works on. Rows without ``retain_until`` are never selected (unknown basis means keep). Given an
engine, log rows written before they were tagged (audit log, login attempts, webhook events
that applied nothing) get their default rule from their timestamp, so they cannot live forever
(docs/retention-law.md §6).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.holds import RecordRef, invoice_ref
from compliance.purge_plan import Key, Snapshot, is_anonymised
from compliance.retention import RetentionEngine
from models import (
    AuditEntry,
    CustomerStub,
    EventOutcome,
    Invoice,
    InvoiceKind,
    LoginAttempt,
    Order,
    Payment,
    Refund,
    WebhookEvent,
)

__all__ = ["chunks", "snapshot"]

_CHUNK = 500


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
    sale_of = _sale_invoices(session, {r[3] for r in inv if r[1] is InvoiceKind.CORRECTION})
    refs["invoices"] = [
        invoice_ref(
            iid,
            kind,
            until,
            order_id=order_id,
            customer_ref=customer,
            corrects_invoice_id=corrects,
            sale_invoice_id=sale_of.get(order_id),
        )
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
    for chunk in chunks(keys):
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


def chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``ids`` in slices of 500, so IN lists stay bounded."""
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]
