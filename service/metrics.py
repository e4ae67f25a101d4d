"""Prometheus metrics. Under gunicorn set PROMETHEUS_MULTIPROC_DIR so /metrics sums all workers."""

from __future__ import annotations

import os

from flask import Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

AUTH_FAILURES = Counter("kwit_auth_failures_total", "Rejected API-key authentications", ["reason"])
WEBHOOKS = Counter(
    "kwit_webhooks_total",
    "Webhook deliveries by provider, outcome and reason",
    ["provider", "outcome", "reason"],
)
WEBHOOK_LATENCY = Histogram(
    "kwit_webhook_seconds",
    "Webhook handling time",
    ["provider"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def _registry() -> CollectorRegistry | None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return None


def init_app(app: Flask) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        registry = _registry()
        payload = generate_latest(registry) if registry else generate_latest()
        return Response(payload, mimetype=CONTENT_TYPE_LATEST)
