"""Real processes for end-to-end tests: Kwit under gunicorn, `kwit worker`, emulators over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kwit_env(**values: str) -> dict[str, str]:
    """The parent environment plus KWIT_* settings (quiet logs unless asked)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWIT_")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["KWIT_LOG_LEVEL"] = "WARNING"
    env.update(values)
    return env


def wait_http(url: str, *, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def kwit_web(env: dict[str, str], *, workers: int = 2, threads: int = 8) -> Iterator[str]:
    """Kwit under gunicorn; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", process=process)
        yield base
    finally:
        stop(process)


def start_worker(env: dict[str, str], name: str) -> subprocess.Popen:
    """A real `kwit worker` process (kill it with SIGKILL to simulate a crash)."""
    return subprocess.Popen(
        [str(BIN / "kwit"), "worker", "--name", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
