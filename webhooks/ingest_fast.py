"""The hot path: a Stripe payment for an order Kwit has never seen, in one PostgreSQL statement.

Most webhook traffic is Stripe Billing's `invoice.paid` creating its own order. The general
path (webhooks/ingest.py) takes a dozen round trips for it; this one statement of
data-modifying CTEs inserts the order, the dedupe row, the payment, the invoice and the outbox
row together (see docs/BENCHMARKS.md, webhook ingestion).

The statement is its own transaction (autocommit): PostgreSQL runs a single statement
atomically, so BEGIN and COMMIT would only add round trips. It is all or nothing: every row
after the order is inserted only if the one before it was, and if a racing delivery leaves it
half done the statement raises (kwit_abort_partial_write, migration 0002), which undoes it.

It only handles the case where nothing about the money exists yet. Whenever the statement
finds otherwise (the order, the payment or a racing delivery got there first) it reports
`None` and the caller takes the general path, which locks and applies the state machine.

The statement is built from the models' tables and Kwit's enums, and compiled once, at import,
to psycopg's SQL text: per request only the parameters change, and SQLAlchemy's per-execute
machinery, which cost as much as PostgreSQL's own work here, is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from models import (
    EventOutcome,
    Invoice,
    InvoiceKind,
    InvoiceState,
    Order,
    OrderStatus,
    OutboxItem,
    OutboxKind,
    OutboxState,
    Payment,
    WebhookEvent,
    new_id,
)
from models.enums import StripePaymentStatus
from webhooks.events import EventKind, Provider, ProviderEvent
from webhooks.payments import sale_dedupe_key

__all__ = ["PARAMETERS", "PARTIAL_WRITE", "FastResult", "applies", "try_record"]

PARTIAL_WRITE = "KW001"  # the SQLSTATE kwit_abort_partial_write raises

_ORDERS = Order.__table__
_EVENTS = WebhookEvent.__table__
_PAYMENTS = Payment.__table__
_INVOICES = Invoice.__table__
_OUTBOX = OutboxItem.__table__

# The statement's parameters and the column each one's type comes from. try_record adds the
# ids, `now` and `dedupe_key`; the caller gives the rest (webhooks/ingest.py, _fast_values).
_TYPED_BY = {
    "order_id": _ORDERS.c.id,
    "external_ref": _ORDERS.c.external_ref,
    "customer_ref": _ORDERS.c.customer_ref,
    "currency": _ORDERS.c.currency,
    "amount": _ORDERS.c.gross_minor,
    "items": _ORDERS.c["items"],  # a JSON string: no SQLAlchemy type processing on this path
    "buyer_type": _ORDERS.c.buyer_type,
    "billing": _ORDERS.c.billing,
    "order_basis": _ORDERS.c.retention_basis,
    "order_until": _ORDERS.c.retain_until,
    "event_id": _EVENTS.c.id,
    "event_key": _EVENTS.c.event_key,
    "event_type": _EVENTS.c.event_type,
    "body_sha256": _EVENTS.c.body_sha256,
    "event_basis": _EVENTS.c.retention_basis,
    "event_until": _EVENTS.c.retain_until,
    "ppid": _PAYMENTS.c.provider_payment_id,
    "payment_id": _PAYMENTS.c.id,
    "paid_at": _PAYMENTS.c.paid_at,
    "payment_basis": _PAYMENTS.c.retention_basis,
    "payment_until": _PAYMENTS.c.retain_until,
    "invoice_id": _INVOICES.c.id,
    "dedupe_key": _INVOICES.c.dedupe_key,
    "outbox_id": _OUTBOX.c.id,
    "now": _ORDERS.c.created_at,
}
PARAMETERS = frozenset(_TYPED_BY)
# Rendered with a cast to its column's type, e.g. %(now)s::TIMESTAMP WITH TIME ZONE.
_P = {name: sa.bindparam(name, type_=col.type, required=False) for name, col in _TYPED_BY.items()}


def _const(value: str | int, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A value from Kwit's vocabulary, written into the SQL text when it is compiled."""
    return sa.literal(value, column.type, literal_execute=True)


def _insert_select(
    table: sa.Table, values: dict[str, Any], *, source: Any = None, where: Any = None
) -> postgresql.Insert:
    """INSERT INTO table (keys) SELECT values [FROM source] [WHERE where]."""
    select = sa.select(*values.values())
    if source is not None:
        select = select.select_from(source)
    if where is not None:
        select = select.where(where)
    return postgresql.insert(table).from_select(list(values), select)


def _statement() -> sa.Select[Any]:
    stripe = Provider.STRIPE.value
    known = sa.union_all(
        sa.select(_PAYMENTS.c.id).where(
            _PAYMENTS.c.provider == _const(stripe, _PAYMENTS.c.provider),
            _PAYMENTS.c.provider_payment_id == _P["ppid"],
        ),
        sa.select(_ORDERS.c.id).where(_ORDERS.c.external_ref == _P["external_ref"]),
    ).cte("known")
    seen = (
        sa.select(_EVENTS.c.id)
        .where(
            _EVENTS.c.provider == _const(stripe, _EVENTS.c.provider),
            _EVENTS.c.event_key == _P["event_key"],
        )
        .cte("seen")
    )
    o = _ORDERS.c
    order = (
        _insert_select(
            _ORDERS,
            {
                "id": _P["order_id"],
                "external_ref": _P["external_ref"],
                "customer_ref": _P["customer_ref"],
                "provider": _const(stripe, o.provider),
                "currency": _P["currency"],
                "gross_minor": _P["amount"],
                "items": _P["items"],
                "buyer_type": _P["buyer_type"],
                "billing": _P["billing"],
                "status": _const(OrderStatus.PAID.value, o.status),
                "created_at": _P["now"],
                "updated_at": _P["now"],
                "retention_basis": _P["order_basis"],
                "retain_until": _P["order_until"],
            },
            where=~sa.exists(known.select()) & ~sa.exists(seen.select()),
        )
        .on_conflict_do_nothing(index_elements=[o.external_ref])
        .returning(o.id)
        .cte("ord")
    )
    e = _EVENTS.c
    event = (
        _insert_select(
            _EVENTS,
            {
                "id": _P["event_id"],
                "provider": _const(stripe, e.provider),
                "event_key": _P["event_key"],
                "event_type": _P["event_type"],
                "provider_payment_id": _P["ppid"],
                "order_id": order.c.id,
                "body_sha256": _P["body_sha256"],
                "outcome": _const(EventOutcome.APPLIED.value, e.outcome),
                "received_at": _P["now"],
                "retention_basis": _P["event_basis"],
                "retain_until": _P["event_until"],
            },
            source=order,
        )
        .on_conflict_do_nothing(index_elements=[e.provider, e.event_key])
        .returning(e.id)
        .cte("ev")
    )
    p = _PAYMENTS.c
    payment = (
        _insert_select(
            _PAYMENTS,
            {
                "id": _P["payment_id"],
                "order_id": order.c.id,
                "provider": _const(stripe, p.provider),
                "provider_payment_id": _P["ppid"],
                "status": _const(StripePaymentStatus.PAID.value, p.status),
                "amount_minor": _P["amount"],
                "currency": _P["currency"],
                "paid_at": _P["paid_at"],
                "created_at": _P["now"],
                "updated_at": _P["now"],
                "retention_basis": _P["payment_basis"],
                "retain_until": _P["payment_until"],
            },
            source=order,
            where=sa.exists(event.select()),
        )
        .on_conflict_do_nothing(index_elements=[p.provider, p.provider_payment_id])
        .returning(p.id, p.order_id)
        .cte("pay")
    )
    i = _INVOICES.c
    invoice = (
        _insert_select(
            _INVOICES,
            {
                "id": _P["invoice_id"],
                "order_id": payment.c.order_id,
                "kind": _const(InvoiceKind.SALE.value, i.kind),
                "dedupe_key": _P["dedupe_key"],
                "state": _const(InvoiceState.PENDING.value, i.state),
                "attempts": _const(0, i.attempts),
                "provider": _const(stripe, i.provider),
                "provider_payment_id": _P["ppid"],
                "gross_minor": _P["amount"],
                "currency": _P["currency"],
                "paid_at": _P["paid_at"],
                "created_at": _P["now"],
                "updated_at": _P["now"],
            },
            source=payment,
        )
        .on_conflict_do_nothing(index_elements=[i.dedupe_key])
        .returning(i.id)
        .cte("inv")
    )
    b = _OUTBOX.c
    outbox = (
        _insert_select(
            _OUTBOX,
            {
                "id": _P["outbox_id"],
                "kind": _const(OutboxKind.ISSUE_INVOICE.value, b.kind),
                "ref_id": invoice.c.id,
                "state": _const(OutboxState.PENDING.value, b.state),
                "due_at": _P["now"],
                "attempts": _const(0, b.attempts),
                "created_at": _P["now"],
                "updated_at": _P["now"],
            },
            source=invoice,
        )
        .returning(b.id)
        .cte("box")
    )
    # The order went in but the outbox row did not: a racing delivery got between the CTEs.
    half_done = sa.exists(order.select()) & ~sa.exists(outbox.select())
    return sa.select(
        sa.exists(seen.select()).label("seen"),
        sa.select(outbox.c.id).scalar_subquery().label("outbox_id"),
        sa.case((half_done, sa.func.kwit_abort_partial_write())).label("guard"),
    )


def _compile(statement: sa.Select[Any]) -> str:
    """psycopg's SQL text with %(name)s placeholders; constants rendered in place."""
    compiled = statement.compile(
        dialect=PGDialect_psycopg(), compile_kwargs={"render_postcompile": True}
    )
    # Every placeholder is one of PARAMETERS: nothing else would get a value per request.
    assert set(compiled.params) == PARAMETERS, set(compiled.params) ^ PARAMETERS
    return compiled.string


# Runs on the driver connection (see try_record), so it is compiled here, once.
STATEMENT = _compile(_statement())


@dataclass(frozen=True)
class FastResult:
    """`duplicate` (nothing written) or `applied` with the outbox id to enqueue."""

    duplicate: bool
    order_id: str | None = None
    outbox_id: str | None = None


def applies(event: ProviderEvent, livemode: bool) -> bool:
    """Whether the event is the kind this path handles; the statement decides the rest."""
    return (
        event.provider is Provider.STRIPE
        and event.kind is EventKind.PAID
        and event.order_ref is None
        and event.billing is not None
        and event.external_ref is not None
        and event.provider_payment_id is not None
        and event.amount_minor is not None
        and (event.livemode is None or event.livemode == livemode)
    )


def try_record(engine: sa.Engine, values: dict[str, Any], *, now: datetime) -> FastResult | None:
    """Run the statement; None means "take the general path" (and nothing was written).

    `values` holds every parameter but the ids, `now` and `dedupe_key`. It runs on a pooled
    connection of its own, straight on psycopg: the ORM session and SQLAlchemy's statement
    machinery cost as much as PostgreSQL's work here (see docs/BENCHMARKS.md).
    """
    ids = {
        "order_id": new_id(),
        "event_id": new_id(),
        "payment_id": new_id(),
        "invoice_id": new_id(),
        "outbox_id": new_id(),
    }
    params = {**values, **ids, "now": now, "dedupe_key": sale_dedupe_key(ids["order_id"])}
    try:
        seen, outbox_id, _guard = _run_autocommitted(engine, params)
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == PARTIAL_WRITE:
            return None  # the statement undid itself; the locking path sorts out the race
        raise
    if outbox_id is not None:
        return FastResult(duplicate=False, order_id=ids["order_id"], outbox_id=outbox_id)
    if seen:
        return FastResult(duplicate=True)
    return None  # the order or payment exists: nothing was written


def _run_autocommitted(engine: sa.Engine, params: dict[str, Any]) -> tuple[Any, ...]:
    """Execute the statement as its own transaction; errors surface as SQLAlchemy's."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        pooled = engine.raw_connection()
    except dbapi_error as exc:  # the server is down: SQLAlchemy's error, so a 503
        raise _translated(engine, exc, lost=True) from exc
    driver = pooled.dbapi_connection
    assert driver is not None
    driver.autocommit = True
    try:
        return driver.execute(STATEMENT, params).fetchone()
    except dbapi_error as exc:
        # Like SQLAlchemy: a lost server is a 503, and its connection leaves the pool
        # instead of failing the next request too.
        lost = engine.dialect.is_disconnect(exc, driver, None)
        if lost:
            pooled.invalidate(exc)
        raise _translated(engine, exc, lost=lost) from exc
    finally:
        if pooled.dbapi_connection is not None:
            driver.autocommit = False
        pooled.close()


def _translated(engine: sa.Engine, exc: Exception, *, lost: bool) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError.instance(
        None,
        None,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=engine.dialect,
    )
