"""`kwit serve` as a real process: it keeps serving until a signal stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from models.migrate import upgrade
from tests.e2e.procs import free_port

KWIT = str(Path(sys.executable).with_name("kwit"))


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"kwit serve exited with {process.returncode}"
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_keeps_serving_until_stopped(tmp_path: Path, stop_signal: signal.Signals) -> None:
    database = f"sqlite:///{tmp_path / 'kwit.db'}"
    upgrade(database)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KWIT_")}
    environ.update(KWIT_DATABASE_URL=database, KWIT_BLOB_DIR=str(tmp_path / "blobs"))
    process = subprocess.Popen(
        [KWIT, "serve", "--port", str(port)],
        env=environ,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_healthy(url, process)
        time.sleep(3)
        assert process.poll() is None, "kwit serve stopped on its own"
        assert requests.get(url, timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
    assert process.returncode == 0, err[-2000:]
    assert f"Kwit listening on http://127.0.0.1:{port}" in out
    assert "Traceback" not in err
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
