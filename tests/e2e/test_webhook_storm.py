"""Duplicate storms against a running server on real PostgreSQL: one transition, one invoice."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from models import Invoice, OutboxItem, Payment, WebhookEvent
from models.session import make_engine, make_session_factory
from tests.e2e.procs import kwit_env, kwit_web
from tests.factories import make_order, make_payment
from tests.support import PAYNOW_SIGNATURE_KEY, STRIPE_SECRET, TEST_FERNET_KEY
from webhooks import paynow, samples, stripe

pytestmark = pytest.mark.slow
DELIVERIES = 50


@pytest.fixture
def server(pg_db: str, redis_url: str, queue_name: str):
    env = kwit_env(
        KWIT_DATABASE_URL=pg_db,
        KWIT_REDIS_URL=redis_url,
        KWIT_QUEUE_NAME=queue_name,
        KWIT_ENCRYPTION_KEYS=TEST_FERNET_KEY,
        KWIT_STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
        KWIT_PAYNOW_SIGNATURE_KEY=PAYNOW_SIGNATURE_KEY,
    )
    with kwit_web(env, workers=2, threads=16) as base:
        yield base


def storm(url: str, body: bytes, headers: dict[str, str]) -> list[tuple[int, str]]:
    def send(_: int) -> tuple[int, str]:
        response = requests.post(url, data=body, headers=headers, timeout=30)
        return response.status_code, response.json().get("outcome", "")

    with ThreadPoolExecutor(DELIVERIES) as pool:
        return list(pool.map(send, range(DELIVERIES)))


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return {
                model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (WebhookEvent, Payment, Invoice, OutboxItem)
            } | {
                "paid": session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Payment)
                    .where(Payment.status.in_(["paid", "CONFIRMED"]))
                )
            }
    finally:
        engine.dispose()


def test_same_invoice_paid_fifty_times_at_once(server: str, pg_db: str) -> None:
    now = int(time.time())
    body = samples.encode(samples.sample_event("invoice.paid", now=now, suffix="storm"))
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": stripe.sign(body, STRIPE_SECRET, timestamp=now),
    }
    results = storm(f"{server}/webhooks/stripe", body, headers)
    assert {status for status, _ in results} == {200}
    outcomes = sorted(outcome for _, outcome in results)
    assert outcomes.count("applied") == 1
    assert outcomes.count("duplicate") == DELIVERIES - 1
    assert counts(pg_db) == {
        "webhook_events": 1,
        "payments": 1,
        "invoices": 1,
        "outbox": 1,
        "paid": 1,
    }


def test_same_paynow_confirmation_fifty_times_at_once(server: str, pg_db: str) -> None:
    engine = make_engine(pg_db)
    with make_session_factory(engine).begin() as session:
        order = make_order(session)
        make_payment(
            session,
            order,
            status="PENDING",
            provider_payment_id="STRM-8F9-08K-WGD",
            provider_modified_at="2026-11-23T10:00:00",
        )
        order_id = order.id
    engine.dispose()
    body = json.dumps(
        {
            "paymentId": "STRM-8F9-08K-WGD",
            "externalId": order_id,
            "status": "CONFIRMED",
            "modifiedAt": "2026-11-23T10:00:07",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Signature": paynow.sign(body, PAYNOW_SIGNATURE_KEY),
    }
    results = storm(f"{server}/webhooks/paynow", body, headers)
    assert {status for status, _ in results} == {200}
    outcomes = [outcome for _, outcome in results]
    assert outcomes.count("applied") == 1
    assert outcomes.count("duplicate") == DELIVERIES - 1
    assert counts(pg_db) == {
        "webhook_events": 1,
        "payments": 1,
        "invoices": 1,
        "outbox": 1,
        "paid": 1,
    }


def test_different_events_for_the_same_money_race(server: str, pg_db: str) -> None:
    """invoice.paid and checkout.session.completed for one PaymentIntent, 25 of each at once."""
    now = int(time.time())
    bodies = [
        samples.encode(samples.sample_event(kind, now=now, suffix="race"))
        for kind in ("invoice.paid", "checkout.session.completed")
    ]

    def send(i: int) -> tuple[int, str]:
        body = bodies[i % 2]
        response = requests.post(
            f"{server}/webhooks/stripe",
            data=body,
            timeout=30,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": stripe.sign(body, STRIPE_SECRET, timestamp=now),
            },
        )
        return response.status_code, response.json().get("outcome", "")

    with ThreadPoolExecutor(DELIVERIES) as pool:
        results = list(pool.map(send, range(DELIVERIES)))
    assert {status for status, _ in results} == {200}
    outcomes = [outcome for _, outcome in results]
    assert outcomes.count("applied") == 1
    assert outcomes.count("stale") == 1
    found = counts(pg_db)
    assert (found["invoices"], found["outbox"], found["paid"]) == (1, 1, 1)
