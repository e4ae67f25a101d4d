"""The hot path: a Stripe payment for an order Kwit has never seen, in one PostgreSQL statement.

Most webhook traffic is Stripe Billing's `invoice.paid` creating its own order. The general
path (webhooks/ingest.py) takes a dozen round trips for it; this one statement of
data-modifying CTEs inserts the order, the dedupe row, the payment, the invoice and the outbox
row together (DESIGN §9).

The statement is its own transaction (autocommit): PostgreSQL runs a single statement
atomically, so BEGIN and COMMIT would only add round trips. It is all or nothing: every row
after the order is inserted only if the one before it was, and if a racing delivery leaves it
half done the statement raises (kwit_abort_partial_write, migration 0002), which undoes it.

It only handles the case where nothing about the money exists yet. Whenever the statement
finds otherwise (the order, the payment or a racing delivery got there first) it reports
`None` and the caller takes the general path, which locks and applies the state machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from models import OutboxKind, new_id
from webhooks.events import EventKind, Provider, ProviderEvent

# psycopg placeholders: the statement runs on the driver connection (see try_record).
_STATEMENT = """
WITH known AS (
    SELECT 1 FROM payments WHERE provider = 'stripe' AND provider_payment_id = %(ppid)s
    UNION ALL
    SELECT 1 FROM orders WHERE external_ref = %(external_ref)s
),
seen AS (
    SELECT 1 FROM webhook_events WHERE provider = 'stripe' AND event_key = %(event_key)s
),
ord AS (
    INSERT INTO orders (id, external_ref, customer_ref, provider, currency, gross_minor, items,
                        buyer_type, billing, status, created_at, updated_at,
                        retention_basis, retain_until)
    SELECT %(order_id)s, %(external_ref)s, %(customer_ref)s, 'stripe', %(currency)s, %(amount)s,
           CAST(%(items)s AS JSON), %(buyer_type)s, %(billing)s, 'paid', %(now)s, %(now)s,
           %(order_basis)s, %(order_until)s
    WHERE NOT EXISTS (SELECT 1 FROM known) AND NOT EXISTS (SELECT 1 FROM seen)
    ON CONFLICT (external_ref) DO NOTHING
    RETURNING id
),
ev AS (
    INSERT INTO webhook_events (id, provider, event_key, event_type, provider_payment_id,
                                order_id, body_sha256, outcome, received_at,
                                retention_basis, retain_until)
    SELECT %(event_id)s, 'stripe', %(event_key)s, %(event_type)s, %(ppid)s, ord.id,
           %(body_sha256)s, 'applied', %(now)s, %(event_basis)s, %(event_until)s
    FROM ord
    ON CONFLICT (provider, event_key) DO NOTHING
    RETURNING id
),
pay AS (
    INSERT INTO payments (id, order_id, provider, provider_payment_id, status, amount_minor,
                          currency, paid_at, created_at, updated_at,
                          retention_basis, retain_until)
    SELECT %(payment_id)s, ord.id, 'stripe', %(ppid)s, 'paid', %(amount)s, %(currency)s, %(paid_at)s, %(now)s,
           %(now)s, %(payment_basis)s, %(payment_until)s
    FROM ord WHERE EXISTS (SELECT 1 FROM ev)
    ON CONFLICT (provider, provider_payment_id) DO NOTHING
    RETURNING id, order_id
),
inv AS (
    INSERT INTO invoices (id, order_id, kind, dedupe_key, state, attempts, provider,
                          provider_payment_id, gross_minor, currency, paid_at,
                          created_at, updated_at)
    SELECT %(invoice_id)s, pay.order_id, 'sale', 'sale:' || pay.order_id, 'pending', 0, 'stripe',
           %(ppid)s, %(amount)s, %(currency)s, %(paid_at)s, %(now)s, %(now)s
    FROM pay
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
),
box AS (
    INSERT INTO outbox (id, kind, ref_id, state, due_at, attempts, created_at, updated_at)
    SELECT %(outbox_id)s, %(outbox_kind)s, inv.id, 'pending', %(now)s, 0, %(now)s, %(now)s FROM inv
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM seen) AS seen,
       (SELECT id FROM box) AS outbox_id,
       CASE WHEN EXISTS (SELECT 1 FROM ord) AND NOT EXISTS (SELECT 1 FROM box)
            THEN kwit_abort_partial_write() END AS guard
"""
PARTIAL_WRITE = "KW001"  # the SQLSTATE kwit_abort_partial_write raises


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

    It runs on a pooled connection of its own, straight on psycopg: the ORM session and
    SQLAlchemy's statement machinery cost as much as PostgreSQL's work here (BENCHMARKS.md).
    """
    ids = {
        "order_id": new_id(),
        "event_id": new_id(),
        "payment_id": new_id(),
        "invoice_id": new_id(),
        "outbox_id": new_id(),
    }
    params = {**values, **ids, "now": now, "outbox_kind": OutboxKind.ISSUE_INVOICE.value}
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
        return driver.execute(_STATEMENT, params).fetchone()
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
