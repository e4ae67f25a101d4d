"""Slow clients do not take the documented deployment down (service/gunicorn_conf.py).

Four connections trickle a webhook body one byte at a time. Under the documented gunicorn
settings (2 gthread workers), webhooks from other clients are still answered within a second.
The same load against two sync workers is the failure this guards against; it is shown once
as the control, so the test proves the settings matter and not just that the box is fast.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
import requests

from tests.e2e.procs import BIN, ROOT, free_port, kwit_env, stop, wait_http
from tests.support import STRIPE_SECRET, TEST_FERNET_KEY
from webhooks import samples, stripe

pytestmark = pytest.mark.slow
SLOW_CLIENTS = 4


@contextmanager
def gunicorn(env: dict[str, str], *extra: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), *extra, "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", process=process)
        yield base
    finally:
        stop(process)


@contextmanager
def trickling(base: str, count: int) -> Iterator[None]:
    """`count` connections that announce a 1 KiB body and send a byte every half second."""
    host, port = base.removeprefix("http://").split(":")
    stop_event = threading.Event()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Stripe-Signature: t=1,v1=00\r\nContent-Length: 1024\r\n\r\n"
        )
        sockets.append(sock)

    def drip() -> None:
        while not stop_event.wait(0.5):
            for sock in sockets:
                with suppress(OSError):
                    sock.send(b" ")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    time.sleep(1.0)  # let every slow connection reach a worker
    try:
        yield
    finally:
        stop_event.set()
        thread.join()
        for sock in sockets:
            sock.close()


def webhook_latencies(base: str, count: int = 6) -> list[float]:
    latencies = []
    for i in range(count):
        now = int(time.time())
        body = samples.encode(samples.sample_event("invoice.paid", now=now, suffix=f"slow{i}"))
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": stripe.sign(body, STRIPE_SECRET, timestamp=now),
        }
        started = time.monotonic()
        try:
            response = requests.post(
                f"{base}/webhooks/stripe", data=body, headers=headers, timeout=3
            )
            assert response.status_code == 200, response.text
            latencies.append(time.monotonic() - started)
        except requests.Timeout:
            latencies.append(float("inf"))
    return latencies


@pytest.fixture
def env(pg_db: str) -> dict[str, str]:
    return kwit_env(
        KWIT_DATABASE_URL=pg_db,
        KWIT_ENCRYPTION_KEYS=TEST_FERNET_KEY,
        KWIT_STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
    )


def test_documented_deployment_answers_webhooks_while_clients_trickle(env: dict[str, str]) -> None:
    with gunicorn(env, "-c", "python:service.gunicorn_conf") as base, trickling(base, SLOW_CLIENTS):
        latencies = webhook_latencies(base)
    assert max(latencies) < 1.0, latencies


def test_control_two_sync_workers_are_stopped_by_the_same_clients(env: dict[str, str]) -> None:
    with gunicorn(env, "-w", "2", "-k", "sync") as base, trickling(base, SLOW_CLIENTS):
        latencies = webhook_latencies(base, count=2)
    assert min(latencies) > 1.0, latencies
