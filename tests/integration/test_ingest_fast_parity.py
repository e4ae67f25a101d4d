"""The one-statement hot path writes what the general path writes (PostgreSQL only).

One event goes through webhooks/ingest_fast.py, an equivalent one through the general, locking
path of webhooks/ingest.py; every column of the rows each leaves in orders, webhook_events,
payments, invoices and outbox is then compared. Both get the same `now`, so the timestamps
must agree too, except one. What legitimately differs is replaced by a placeholder (or left
out) before comparing:

- the event key: a second event with the same key would be a duplicate, not a second order;
- external_ref (orders) and the provider payment id (events, payments, invoices): both are
  unique, so two orders cannot share them;
- the row ids, and the ids that link the rows (order_id, ref_id, and the order id inside the
  sale invoice's dedupe_key): each path draws its own; the placeholders still check that each
  row points at its own path's order and invoice;
- updated_at of orders and payments: the general path inserts these rows and then updates them
  in the same transaction, and the ORM stamps that UPDATE with the clock (the columns'
  onupdate), where the one statement has only the insert, at `now`.

`billing` is compared decrypted (a Fernet token is different each time it is made), and
`items` as JSON values: the raw JSON text may escape non-ASCII characters differently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.retention import RetentionEngine
from models import Invoice, Order, OutboxItem, Payment, WebhookEvent
from models.session import make_engine, make_session_factory
from models.vault import Vault
from tests.support import TEST_FERNET_KEY
from webhooks import ingest_fast, samples, stripe
from webhooks.events import ProviderEvent
from webhooks.ingest import EventResult, IngestContext, record

NOW = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)
BODY_SHA256 = hashlib.sha256(b"the same body for both").hexdigest()


def invoice_paid_with_lines() -> ProviderEvent:
    """Stripe Billing's invoice.paid: lines with tax details, a business buyer with a NIP."""
    return stripe.normalise(samples.sample_event("invoice.paid", now=int(time.time())))


def checkout_without_lines_by_a_consumer() -> ProviderEvent:
    """A Checkout session: no lines (one line for the total is made up), a buyer without a NIP."""
    event = stripe.normalise(
        samples.sample_event("checkout.session.completed", now=int(time.time()))
    )
    assert event.billing is not None
    return dataclasses.replace(
        event, billing=dataclasses.replace(event.billing, nip=None, tax_id=None)
    )


@pytest.fixture
def ingestion(pg_db: str) -> Iterator[tuple[sa.Engine, IngestContext]]:
    engine = make_engine(pg_db)
    yield engine, IngestContext(vault=Vault([TEST_FERNET_KEY]), retention=RetentionEngine("PL"))
    engine.dispose()


@pytest.mark.parametrize(
    "make_event", [invoice_paid_with_lines, checkout_without_lines_by_a_consumer]
)
def test_fast_path_writes_what_the_general_path_writes(
    ingestion: tuple[sa.Engine, IngestContext], monkeypatch: pytest.MonkeyPatch, make_event: Any
) -> None:
    engine, ctx = ingestion
    fast_event = make_event()
    general_event = dataclasses.replace(
        fast_event,
        event_key=f"{fast_event.event_key}_general",
        external_ref=f"{fast_event.external_ref}_general",
        provider_payment_id=f"{fast_event.provider_payment_id}_general",
    )
    assert ingest_fast.applies(fast_event, ctx.stripe_livemode)

    with make_session_factory(engine)() as session:
        fast = record(session, ctx, fast_event, body_sha256=BODY_SHA256, now=NOW)
        assert not session.in_transaction()  # the fast path ran on its own connection
        with monkeypatch.context() as patched:
            patched.setattr(ingest_fast, "applies", lambda *_: False)
            general = record(session, ctx, general_event, body_sha256=BODY_SHA256, now=NOW)
        session.commit()
        fast_rows = written_rows(session, ctx, fast, fast_event)
        general_rows = written_rows(session, ctx, general, general_event)

    assert (fast.outcome, fast.reason, len(fast.outbox_ids)) == ("applied", None, 1)
    assert (general.outcome, general.reason, len(general.outbox_ids)) == ("applied", None, 1)
    assert fast_rows == general_rows


def written_rows(
    session: Session, ctx: IngestContext, result: EventResult, event: ProviderEvent
) -> dict[str, dict[str, Any]]:
    """Every column of the five rows one event wrote, with its own ids replaced by names."""
    assert result.order_id is not None
    order = _row(session, Order, Order.id == result.order_id)
    invoice = _row(session, Invoice, Invoice.order_id == result.order_id)
    rows = {
        "orders": order,
        "webhook_events": _row(session, WebhookEvent, WebhookEvent.event_key == event.event_key),
        "payments": _row(session, Payment, Payment.order_id == result.order_id),
        "invoices": invoice,
        "outbox": _row(session, OutboxItem, OutboxItem.ref_id == invoice["id"]),
    }
    rows["orders"]["billing"] = ctx.vault.decrypt(order["billing"])
    for table in ("orders", "payments"):
        del rows[table]["updated_at"]  # see the module docstring
    names = {
        result.order_id: "<order id>",
        invoice["id"]: "<invoice id>",
        event.event_key: "<event key>",
        event.external_ref: "<external_ref>",
        event.provider_payment_id: "<provider payment id>",
    }
    for table, row in rows.items():
        row["id"] = f"<{table} id>"
        for column, value in row.items():
            row[column] = _named(value, names)
    return rows


def _row(session: Session, model: Any, where: Any) -> dict[str, Any]:
    return dict(session.execute(sa.select(model.__table__).where(where)).mappings().one())


def _named(value: Any, names: dict[str | None, str]) -> Any:
    """`value` with every id of `names` in it (also inside strings and JSON) replaced."""
    if isinstance(value, str):
        for actual, name in names.items():
            if actual:
                value = value.replace(actual, name)
        return value
    if isinstance(value, list):
        return [_named(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _named(v, names) for k, v in value.items()}
    return value
