"""Invoice pipeline: invoices per second with 2 `kwit worker` processes against the iFirma emulator.

A backlog of paid orders is recorded through Kwit's own ingestion code (signed Stripe
`invoice.paid` samples, B2B with a NIP, so every invoice also goes to KSeF). Then two real
workers start; their sweepers hand the backlog to Redis and they drain it against the emulator
(its own process, latency 0). Prints the drain time and the steady-state rate, measured
between 10 % and 90 % of the backlog so worker start-up does not count.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.webhooks import BIN, KWIT_REDIS, fernet_key, free_port, fresh_database, wait_for

ROOT = Path(__file__).resolve().parents[1]
IFIRMA_USER = "bench@example.pl"
IFIRMA_KEY = "EAB0D8ACF3308F3B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="record each worker with py-spy while it drains (PREFIX-<n>.txt, collapsed stacks)",
    )
    args = parser.parse_args()
    url = fresh_database("kwit_pipeline")
    key = fernet_key()
    port = free_port()
    emulator = subprocess.Popen(
        [
            str(BIN / "kwit"),
            "emulate",
            "ifirma",
            "--port",
            str(port),
            "--quiet",
            "--ksef-delay-gets",
            "0",
            "--user",
            IFIRMA_USER,
            "--invoice-key",
            IFIRMA_KEY,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "KWIT_DATABASE_URL": url,
        "KWIT_REDIS_URL": KWIT_REDIS,
        "KWIT_QUEUE_NAME": "kwit-bench-pipeline",
        "KWIT_ENCRYPTION_KEYS": key,
        "KWIT_IFIRMA_USER": IFIRMA_USER,
        "KWIT_IFIRMA_INVOICE_KEY": IFIRMA_KEY,
        "KWIT_IFIRMA_BASE_URL": f"http://127.0.0.1:{port}/iapi",
        "KWIT_SWEEP_INTERVAL": "2",
        "KWIT_LOG_LEVEL": "WARNING",
        "KWIT_BLOB_DIR": tempfile.mkdtemp(prefix="kwit-bench-blobs-"),
    }
    workers: list[subprocess.Popen] = []
    try:
        wait_for(f"http://127.0.0.1:{port}/__emulator__/state", emulator)
        subprocess.run(
            [str(BIN / "kwit"), "db", "upgrade"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        backlog(url, key, args.orders)
        redis.Redis.from_url(KWIT_REDIS).flushdb()
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [str(BIN / "kwit"), "worker", "--name", f"bench-{port}-{i}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(args.workers)
        ]
        spies = (
            [spy(w.pid, f"{args.py_spy}-{i}.txt") for i, w in enumerate(workers)]
            if args.py_spy
            else []
        )
        marks = drain(url, args.orders, started)
        for recorder in spies:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            recorder.wait(60)
        state = requests.get(f"http://127.0.0.1:{port}/__emulator__/state", timeout=30).json()
    finally:
        for process in [*workers, emulator]:
            process.send_signal(signal.SIGTERM)
        for process in [*workers, emulator]:
            process.wait(30)
    total = time.monotonic() - started if not marks else marks["done"]
    steady = 0.8 * args.orders / (marks["p90"] - marks["p10"])
    print(
        f"RESULT pipeline invoices={args.orders} workers={args.workers} drain_s={total:.1f} "
        f"steady_rate={steady:.1f}/s overall_rate={args.orders / total:.1f}/s "
        f"emulator_invoices={state['counts']['invoices']}"
    )


def backlog(url: str, key: str, orders: int) -> None:
    """Record `orders` paid Stripe invoices through Kwit's ingestion (no enqueue: no Redis)."""
    from compliance.retention import RetentionEngine
    from models.session import make_engine, make_session_factory
    from models.vault import Vault
    from webhooks import samples, stripe
    from webhooks.ingest import IngestContext, record

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    ctx = IngestContext(vault=Vault([key]), retention=RetentionEngine("PL"))
    now = int(time.time())
    with sessions() as session:
        for i in range(orders):
            event = samples.sample_event("invoice.paid", now=now, suffix=f"pipe{i}")
            body = samples.encode(event)
            normalised = stripe.normalise(event)
            record(
                session,
                ctx,
                normalised,
                body_sha256=hashlib.sha256(body).hexdigest(),
                now=datetime.now(UTC),
            )
            if i % 200 == 199:
                session.commit()
        session.commit()
    engine.dispose()


def spy(pid: int, out: str) -> subprocess.Popen:
    """py-spy on a worker: collapsed stacks, so the profile can be summed and compared."""
    return subprocess.Popen(
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drain(url: str, orders: int, started: float) -> dict[str, float]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    marks: dict[str, float] = {}
    try:
        while True:
            with engine.connect() as conn:
                issued = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM invoices WHERE state = 'issued' AND ksef_number IS NOT NULL"
                    )
                ).scalar_one()
            elapsed = time.monotonic() - started
            if issued >= orders * 0.1:
                marks.setdefault("p10", elapsed)
            if issued >= orders * 0.9:
                marks.setdefault("p90", elapsed)
            if issued >= orders:
                marks["done"] = elapsed
                return marks
            if elapsed > 600:
                raise SystemExit(f"only {issued} of {orders} invoices issued after 600 s")
            time.sleep(0.2)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
