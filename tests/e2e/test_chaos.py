"""Exactly once under chaos: killed workers, a Redis FLUSHALL and lost iFirma responses.

Real PostgreSQL, real Redis, real `kwit worker` processes, Kwit under gunicorn and the iFirma
emulator over HTTP. Paid orders arrive as signed Stripe webhooks; meanwhile workers are
SIGKILLed at random moments (the emulator's latency puts many kills mid-call), Redis is
flushed once, and the emulator drops ~10 % of responses after creating the invoice.

Afterwards every order must have exactly one invoice in the emulator and one `issued` invoice
in Kwit. `make test` runs a small version; `make chaos` the full one (KWIT_CHAOS_ORDERS, 500).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
import requests
import sqlalchemy as sa

from emulators import ifirma as ifirma_emulator
from models import Invoice, InvoiceState, Order
from models.session import make_engine
from tests.e2e.procs import kwit_env, kwit_web, start_worker, stop
from tests.support import IFIRMA_KEY, IFIRMA_USER, STRIPE_SECRET, TEST_FERNET_KEY
from webhooks import samples, stripe

WORKERS = 3


def run_chaos(pg_url: str, redis_url: str, queue: str, orders: int, *, deadline: float) -> None:
    rng = random.Random(20261123)
    server, emulator = ifirma_emulator.start_in_thread(
        user=IFIRMA_USER, keys={"faktura": IFIRMA_KEY, "abonent": IFIRMA_KEY}
    )
    control = emulator.removesuffix("/iapi") + "/__emulator__"
    # Latency stretches every call, so many of the kills below land while a call is in flight.
    requests.post(f"{control}/faults", json={"mode": "latency", "seconds": 0.1}, timeout=5)
    requests.post(
        f"{control}/faults",
        json={
            "mode": "lose_response",
            "route": "fakturakraj.json",
            "method": "POST",
            "rate": 0.1,
            "n": 10**6,
            "seed": 7,
        },
        timeout=5,
    ).raise_for_status()
    env = kwit_env(
        KWIT_DATABASE_URL=pg_url,
        KWIT_REDIS_URL=redis_url,
        KWIT_QUEUE_NAME=queue,
        KWIT_ENCRYPTION_KEYS=TEST_FERNET_KEY,
        KWIT_STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
        KWIT_IFIRMA_USER=IFIRMA_USER,
        KWIT_IFIRMA_INVOICE_KEY=IFIRMA_KEY,
        KWIT_IFIRMA_BASE_URL=emulator,
        KWIT_IFIRMA_TIMEOUT="2",
        KWIT_JOB_LEASE_SECONDS="8",
        KWIT_SWEEP_INTERVAL="1",
        KWIT_KSEF_ENABLED="false",  # KSeF polling only adds waiting; it is tested elsewhere
        KWIT_BLOB_DIR=os.path.join(os.environ.get("TMPDIR", "/tmp"), f"kwit-chaos-{queue}"),
    )
    # Names unique to this run: a SIGKILLed RQ worker's name stays registered for minutes.
    workers = [start_worker(env, f"{queue}-{i}") for i in range(WORKERS)]
    kills = 0
    try:
        with kwit_web(env, workers=2, threads=8) as web:
            deliver_paid_orders(web, orders)
            flushed = False
            started = time.monotonic()
            while issued_count(pg_url) < orders:
                assert time.monotonic() - started < deadline, (
                    f"only {issued_count(pg_url)} of {orders} issued after {deadline} s: "
                    f"{stuck(pg_url)}"
                )
                time.sleep(rng.uniform(1.0, 2.5))
                victim = rng.randrange(WORKERS)
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(10)
                kills += 1
                workers[victim] = start_worker(env, f"{queue}-{victim}-{kills}")
                if not flushed and issued_count(pg_url) >= orders // 3:
                    redis_lib.Redis.from_url(redis_url).flushall()
                    flushed = True
            assert flushed, "the run ended before Redis was flushed"
        state = requests.get(f"{control}/state", timeout=10).json()
    finally:
        for worker in workers:
            stop(worker, sig=signal.SIGKILL)
        server.shutdown()
        server.server_close()
    verify(pg_url, state, orders, kills)


def deliver_paid_orders(web: str, orders: int) -> None:
    now = int(time.time())

    def send(i: int) -> str:
        body = samples.encode(samples.sample_event("invoice.paid", now=now, suffix=f"chaos{i}"))
        response = requests.post(
            f"{web}/webhooks/stripe",
            data=body,
            timeout=30,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": stripe.sign(body, STRIPE_SECRET, timestamp=now),
            },
        )
        response.raise_for_status()
        return response.json()["outcome"]

    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(send, range(orders)))
    assert outcomes == {"applied": orders}


def issued_count(pg_url: str) -> int:
    engine = make_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(Invoice)
                .where(Invoice.state == InvoiceState.ISSUED)
            ).scalar_one()
    finally:
        engine.dispose()


def stuck(pg_url: str) -> list[tuple]:
    """The invoices that are not issued, with their outbox rows: what a failure must show."""
    from models import OutboxItem

    engine = make_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(
                    Invoice.state,
                    Invoice.attempts,
                    Invoice.last_error,
                    OutboxItem.state,
                    OutboxItem.attempts,
                    OutboxItem.due_at,
                    OutboxItem.locked_until,
                    OutboxItem.last_error,
                )
                .join(OutboxItem, OutboxItem.ref_id == Invoice.id)
                .where(Invoice.state != InvoiceState.ISSUED)
            ).all()
    finally:
        engine.dispose()


def verify(pg_url: str, state: dict, orders: int, kills: int) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            order_ids = set(conn.execute(sa.select(Order.id)).scalars())
            rows = conn.execute(sa.select(Invoice.order_id, Invoice.state, Invoice.ifirma_id)).all()
    finally:
        engine.dispose()
    per_order = Counter()
    for doc in state["invoices"]:
        for order_id in order_ids:
            if f"Kwit order {order_id}," in (doc["uwagi"] or ""):
                per_order[order_id] += 1
    duplicated = sorted(o for o, n in per_order.items() if n > 1)
    missing = sorted(order_ids - set(per_order))
    print(
        f"\nchaos: orders={len(order_ids)} emulator_invoices={len(state['invoices'])} "
        f"kwit_issued={sum(r.state is InvoiceState.ISSUED for r in rows)} "
        f"duplicated={len(duplicated)} missing={len(missing)} worker_kills={kills} "
        f"lost_responses={state['counts'].get('fault_lose_response', 0)}"
    )
    assert kills >= 3, "too few worker kills to call it chaos"
    assert state["counts"].get("fault_lose_response", 0) >= 1, "no response was lost"
    assert len(order_ids) == orders
    assert duplicated == []
    assert missing == []
    assert len(state["invoices"]) == orders
    assert all(r.state is InvoiceState.ISSUED for r in rows)
    assert len(rows) == orders
    assert len({r.ifirma_id for r in rows}) == orders


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_exactly_once_under_chaos_small(pg_db: str, redis_url: str, queue_name: str) -> None:
    run_chaos(pg_db, redis_url, queue_name, orders=100, deadline=240)


@pytest.mark.chaos
@pytest.mark.timeout(int(os.environ.get("KWIT_CHAOS_ORDERS", "500")) * 3 + 300)
def test_exactly_once_under_chaos_full(pg_db: str, redis_url: str, queue_name: str) -> None:
    orders = int(os.environ.get("KWIT_CHAOS_ORDERS", "500"))
    run_chaos(pg_db, redis_url, queue_name, orders=orders, deadline=120 + 2 * orders)
