"""The hot path: a Stripe payment for an order Kwit has never seen, in one PostgreSQL statement.

Most webhook traffic is Stripe Billing's `invoice.paid` creating its own order. The general
path (webhooks/ingest.py) takes a dozen round trips for it; this one statement of
data-modifying CTEs inserts the order, the dedupe row, the payment, the invoice and the outbox
row together. Profiling showed the round trips, not Python, dominated the request (DESIGN §9).

It only handles the case where nothing about the money exists yet. Whenever the statement
finds otherwise (the order, the payment or a racing delivery got there first) it reports
`None` and the caller takes the general path, which locks and applies the state machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from invoicing.outbox import ISSUE_INVOICE
from models import new_id
from webhooks.events import EventKind, Provider, ProviderEvent

_STATEMENT = sa.text(
    """
WITH known AS (
    SELECT 1 FROM payments WHERE provider = 'stripe' AND provider_payment_id = :ppid
    UNION ALL
    SELECT 1 FROM orders WHERE external_ref = :external_ref
),
seen AS (
    SELECT 1 FROM webhook_events WHERE provider = 'stripe' AND event_key = :event_key
),
ord AS (
    INSERT INTO orders (id, external_ref, customer_ref, provider, currency, gross_minor, items,
                        buyer_type, billing, status, created_at, updated_at,
                        retention_basis, retain_until)
    SELECT :order_id, :external_ref, :customer_ref, 'stripe', :currency, :amount,
           CAST(:items AS JSON), :buyer_type, :billing, 'paid', :now, :now,
           :order_basis, :order_until
    WHERE NOT EXISTS (SELECT 1 FROM known) AND NOT EXISTS (SELECT 1 FROM seen)
    ON CONFLICT (external_ref) DO NOTHING
    RETURNING id
),
ev AS (
    INSERT INTO webhook_events (id, provider, event_key, event_type, provider_payment_id,
                                order_id, body_sha256, outcome, received_at,
                                retention_basis, retain_until)
    VALUES (:event_id, 'stripe', :event_key, :event_type, :ppid, (SELECT id FROM ord),
            :body_sha256, 'applied', :now, :event_basis, :event_until)
    ON CONFLICT (provider, event_key) DO NOTHING
    RETURNING id
),
pay AS (
    INSERT INTO payments (id, order_id, provider, provider_payment_id, status, amount_minor,
                          currency, paid_at, created_at, updated_at,
                          retention_basis, retain_until)
    SELECT :payment_id, ord.id, 'stripe', :ppid, 'paid', :amount, :currency, :paid_at, :now,
           :now, :payment_basis, :payment_until
    FROM ord WHERE EXISTS (SELECT 1 FROM ev)
    ON CONFLICT (provider, provider_payment_id) DO NOTHING
    RETURNING id, order_id
),
inv AS (
    INSERT INTO invoices (id, order_id, kind, dedupe_key, state, attempts, provider,
                          provider_payment_id, gross_minor, currency, paid_at,
                          created_at, updated_at)
    SELECT :invoice_id, pay.order_id, 'sale', 'sale:' || pay.order_id, 'pending', 0, 'stripe',
           :ppid, :amount, :currency, :paid_at, :now, :now
    FROM pay
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
),
box AS (
    INSERT INTO outbox (id, kind, ref_id, state, due_at, attempts, created_at, updated_at)
    SELECT :outbox_id, :outbox_kind, inv.id, 'pending', :now, 0, :now, :now FROM inv
    RETURNING id
)
SELECT (SELECT count(*) FROM ev) AS new_event,
       (SELECT count(*) FROM ord) AS new_order,
       (SELECT id FROM box) AS outbox_id
"""
)


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


def try_record(session: Session, values: dict[str, Any], *, now: datetime) -> FastResult | None:
    """Run the statement; None means "take the general path" (and nothing was written)."""
    ids = {
        "order_id": new_id(),
        "event_id": new_id(),
        "payment_id": new_id(),
        "invoice_id": new_id(),
        "outbox_id": new_id(),
    }
    params = {**values, **ids, "now": now, "outbox_kind": ISSUE_INVOICE}
    row = session.execute(_STATEMENT, params).one()
    if row.new_event == 0 and row.new_order == 0:
        return FastResult(duplicate=True)
    if row.outbox_id is not None:
        return FastResult(duplicate=False, order_id=ids["order_id"], outbox_id=row.outbox_id)
    # Something already existed or a racing delivery won part of the work: undo this
    # statement's rows (the caller's transaction holds nothing else) and go the slow way.
    session.rollback()
    return None
