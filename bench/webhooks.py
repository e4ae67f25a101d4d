"""Webhook ingestion and duplicate storm: the fixed floor and Kwit, back to back, same conditions.

Both run under gunicorn with 2 sync workers on PostgreSQL and Redis, fed by the floor's own
generator (../shared/bench/gen_events.py, secret whsec_bench) through wrk -t1 -c16 with the
floor's stripe.lua. Kwit must turn every sample event into an invoice job (order, payment,
invoice and outbox rows), which this script checks after the run.

Prints the RESULT lines of both, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
import requests
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # gunicorn and kwit from the same virtualenv
SECRET = "whsec_bench"  # noqa: S105 - the floor's fixed benchmark secret
PG = os.environ.get("KWIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
KWIT_REDIS = os.environ.get("KWIT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
FLOOR_REDIS = "redis://127.0.0.1:6379/15"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["ingestion", "storm"], default=None)
    args = parser.parse_args()
    bench = args.shared / "bench"
    scenarios = [("ingestion", []), ("storm", ["--distinct", "100"])]
    for name, gen_args in scenarios:
        if args.only and args.only != name:
            continue
        print(
            f"\n== {name}: wrk -t1 -c{args.connections} -d{args.seconds}s, "
            f"gunicorn -w {args.workers} (sync) ==",
            flush=True,
        )
        floor = run_floor(bench, args, gen_args)
        kwit_url = fresh_database("kwit_bench")
        kwit = run_kwit(bench, args, gen_args, kwit_url)
        print(f"floor {floor}")
        print(f"kwit  {kwit}")
        ratio = rps(kwit) / rps(floor)
        print(
            f"RESULT {name} ratio={ratio:.2f} kwit_rps={rps(kwit):.0f} floor_rps={rps(floor):.0f} "
            f"kwit_p99_ms={field(kwit, 'p99_ms'):.2f} kwit_non2xx={field(kwit, 'non2xx'):.0f}"
        )
        if name == "ingestion":
            check_invoice_jobs(kwit_url)


def run_floor(bench: Path, args: argparse.Namespace, gen_args: list[str]) -> str:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS floor CASCADE")
    redis.Redis.from_url(FLOOR_REDIS).flushdb()
    env = {**os.environ, "FLOOR_DSN": PG, "FLOOR_REDIS": FLOOR_REDIS, "FLOOR_SECRET": SECRET}
    return measure(bench, args, gen_args, ["--chdir", str(bench), "floor:app"], env, health="/")


def run_kwit(bench: Path, args: argparse.Namespace, gen_args: list[str], url: str) -> str:
    redis.Redis.from_url(KWIT_REDIS).flushdb()
    env = {
        **os.environ,
        "KWIT_ENV": "production",
        "KWIT_DATABASE_URL": url,
        "KWIT_REDIS_URL": KWIT_REDIS,
        "KWIT_QUEUE_NAME": "kwit-bench",
        "KWIT_STRIPE_WEBHOOK_SECRETS": SECRET,
        "KWIT_ENCRYPTION_KEYS": fernet_key(),
        "KWIT_IFIRMA_USER": "bench@example.pl",
        "KWIT_IFIRMA_INVOICE_KEY": "EAB0D8ACF3308F3B",
        "KWIT_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [str(BIN / "kwit"), "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return measure(bench, args, gen_args, ["wsgi:app"], env, health="/healthz")


def measure(
    bench: Path,
    args: argparse.Namespace,
    gen_args: list[str],
    app: list[str],
    env: dict[str, str],
    *,
    health: str,
) -> str:
    """Serve `app` under gunicorn with the same flags for the floor and Kwit, then run wrk."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        *("--log-level", "warning", "-w", str(args.workers), "-b", f"127.0.0.1:{port}"),
        *app,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        requests_file, warm_file = Path(tmp, "reqs.txt"), Path(tmp, "warm.txt")
        # Timestamps are "now": generate right before the run (300 s tolerance).
        subprocess.run(
            [
                sys.executable,
                str(bench / "gen_events.py"),
                "200000",
                str(requests_file),
                "--secret",
                SECRET,
                *gen_args,
            ],
            check=True,
        )
        subprocess.run(
            [
                sys.executable,
                str(bench / "gen_events.py"),
                "5000",
                str(warm_file),
                "--secret",
                SECRET,
                "--prefix",
                "w",
            ],
            check=True,
        )
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            wait_for(f"http://127.0.0.1:{port}{health}", server)
            wrk(bench, port, warm_file, connections=2, seconds=2)
            return wrk(
                bench, port, requests_file, connections=args.connections, seconds=args.seconds
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


def wrk(bench: Path, port: int, requests_file: Path, *, connections: int, seconds: int) -> str:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(bench / "stripe.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env={**os.environ, "REQS": str(requests_file)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line for line in output.splitlines() if line.startswith("RESULT"))


def check_invoice_jobs(url: str) -> None:
    """Every applied sample event must have become an order, payment, invoice and outbox row."""
    with psycopg.connect(url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("webhook_events", "orders", "payments", "invoices", "outbox")
        }
        applied = conn.execute(
            "SELECT count(*) FROM webhook_events WHERE outcome = 'applied'"
        ).fetchone()[0]
    print(f"kwit rows: {counts}, applied events: {applied}")
    if (
        not applied
        == counts["orders"]
        == counts["payments"]
        == counts["invoices"]
        == counts["outbox"]
    ):
        raise SystemExit("Kwit did not turn every applied event into an invoice job")


def fresh_database(name: str) -> str:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG).set(database=name).render_as_string(hide_password=False)


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def field(result: str, name: str) -> float:
    match = re.search(rf"{name}=([0-9.]+)", result)
    return float(match.group(1)) if match else float("nan")


def rps(result: str) -> float:
    return field(result, "rps")


if __name__ == "__main__":
    main()
