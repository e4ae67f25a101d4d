"""A database error leaves no field value in any log line, at INFO or DEBUG.

PostgreSQL's constraint messages quote the failing row ("Failing row contains (…)"): the
customer_ref, the item names, the start of the billing ciphertext. A constraint added for the
test makes both ingestion paths fail on the order insert; the log must name the SQLSTATE,
table and constraint, and nothing that was in the row.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from models.session import make_engine
from service.app import create_app
from tests.support import STRIPE_SECRET, make_settings
from webhooks import samples, stripe

CUSTOMER = "cus_ForcedFailure77"
CONSTRAINT = "ck_orders_forced_by_test"


@pytest.fixture
def failing_orders(pg_db: str) -> Iterator[str]:
    engine = make_engine(pg_db)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"ALTER TABLE orders ADD CONSTRAINT {CONSTRAINT} CHECK (customer_ref <> '{CUSTOMER}')"
            )
        )
    try:
        yield pg_db
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"ALTER TABLE orders DROP CONSTRAINT {CONSTRAINT}"))
        engine.dispose()


def capture_kwit_log() -> io.StringIO:
    """Point Kwit's own JSON handler (installed by create_app) at a buffer, whatever pytest
    does with stderr; the handler is the process's, so each test re-points it."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_kwit", False)]
    assert handlers, "create_app installs the JSON handler"
    for handler in handlers:
        handler.setStream(buffer)  # type: ignore[attr-defined]
    return buffer


def signed(event: dict) -> tuple[bytes, dict[str, str]]:  # type: ignore[type-arg]
    body = samples.encode(event)
    now = int(time.time())
    return body, {
        "Content-Type": "application/json",
        "Stripe-Signature": stripe.sign(body, STRIPE_SECRET, timestamp=now),
    }


def private_values(event: dict) -> list[str]:  # type: ignore[type-arg]
    invoice = event["data"]["object"]
    values = [CUSTOMER, invoice["customer_name"], invoice["customer_email"]]
    values += [line["description"] for line in invoice["lines"]["data"]]
    values += [v for v in invoice["customer_address"].values() if v]
    return values


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
@pytest.mark.parametrize("path", ["fast", "general"])
def test_a_constraint_failure_logs_no_field_value(
    failing_orders: str, tmp_path: Path, level: str, path: str
) -> None:
    app = create_app(make_settings(failing_orders, tmp_path, log_level=level))
    kwit_log = capture_kwit_log()
    event = samples.sample_event("invoice.paid", now=int(time.time()))
    invoice = event["data"]["object"]
    invoice["customer"] = CUSTOMER
    if path == "general":
        # An order reference Kwit does not know takes the locking path, which creates the order.
        invoice["metadata"] = {"kwit_order": "unknown-order-ref"}
    body, headers = signed(event)
    try:
        response = app.test_client().post("/webhooks/stripe", data=body, headers=headers)
    finally:
        app.extensions["kwit"].close()
    assert response.status_code >= 400
    lines = [json.loads(line) for line in kwit_log.getvalue().splitlines() if line.strip()]
    failures = [line for line in lines if line.get("sqlstate") == "23514"]
    assert failures, lines
    assert failures[0]["constraint"] == CONSTRAINT
    assert failures[0]["table"] == "orders"
    text = kwit_log.getvalue()
    for value in private_values(event):
        assert value not in text, value
    assert "Failing row" not in text


def test_http_client_urls_lose_their_query_string_at_debug(pg_db: str, tmp_path: Path) -> None:
    from emulators import paynow

    app = create_app(make_settings(pg_db, tmp_path, log_level="DEBUG"))
    kwit_log = capture_kwit_log()
    server, base = paynow.start_in_thread(api_key="k", signature_key="s", notify_url=None)
    try:
        requests.get(f"{base}/v3/payments?nip=5260250995", timeout=5)
        logging.getLogger("urllib3.connectionpool").warning(
            "Retrying after connection broken: /iapi/fakturakraj/list.json?nip=5260250995"
        )
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["kwit"].close()
    assert "5260250995" not in kwit_log.getvalue()
