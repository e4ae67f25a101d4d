"""gunicorn settings for the documented deployment: `gunicorn -c python:service.gunicorn_conf wsgi:app`.

Flags on the command line override these (`-w 4 -b 0.0.0.0:8000`).

Threaded workers, not sync ones. A sync worker belongs to one client until that client has
sent its whole body, so four clients trickling a byte every few seconds stop two sync workers
and every webhook behind them (gunicorn's documentation asks for a buffering proxy in front of
sync workers for this reason). A gthread worker serves other connections from its thread pool
while a slow one is still sending; the slow-client test (tests/e2e/test_slow_clients.py) holds
this deployment to answering webhooks within a second while four clients trickle.
"""

from __future__ import annotations

import os
from typing import Any

worker_class = "gthread"
workers = 2
threads = 8
bind = "0.0.0.0:8000"
timeout = 30  # seconds a worker may go silent before the arbiter replaces it
graceful_timeout = 30
keepalive = 5  # seconds an idle keep-alive connection is held open
# Request-line and header limits as gunicorn's defaults; the body limit (1 MiB) is Kwit's own.
limit_request_line = 4094
limit_request_fields = 100


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from PROMETHEUS_MULTIPROC_DIR (prometheus_client's recipe).

    Counters and histograms of a dead worker stay: they are part of the totals /metrics reports.
    """
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the variable prometheus_client itself reads
        multiprocess.mark_process_dead(worker.pid)
