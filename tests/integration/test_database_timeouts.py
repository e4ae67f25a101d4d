"""PostgreSQL timeouts: a hung or unreachable database is a quick 503, never a stuck worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from models.session import Timeouts, make_engine
from service.app import create_app
from tests.factories import make_order, make_payment
from tests.support import PAYNOW_SIGNATURE_KEY, assert_problem, make_settings
from tests.tcp_proxy import tcp_proxy
from webhooks import paynow


def test_a_statement_past_the_limit_is_cancelled_by_the_server(pg_db: str) -> None:
    engine = make_engine(pg_db, timeouts=Timeouts(statement=0.3))
    try:
        started = time.monotonic()
        with engine.connect() as conn, pytest.raises(sa.exc.OperationalError) as cancelled:
            conn.execute(sa.text("SELECT pg_sleep(3)"))
        assert getattr(cancelled.value.orig, "sqlstate", None) == "57014"  # query_canceled
        assert time.monotonic() - started < 2
    finally:
        engine.dispose()


def test_options_given_in_the_url_win_over_the_defaults(pg_db: str) -> None:
    url = make_url(pg_db).update_query_dict({"options": "-c statement_timeout=1234"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "1234ms"
    finally:
        engine.dispose()


def test_a_server_that_accepts_but_never_answers_fails_the_connect_quickly(
    pg_db: str, tmp_path: Path
) -> None:
    url = make_url(pg_db)
    with tcp_proxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxy.set_mode("blackhole")
        hung = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = create_app(make_settings(hung, tmp_path, db_connect_timeout=1.0))
        try:
            started = time.monotonic()
            response = app.test_client().get("/readyz")
            elapsed = time.monotonic() - started
        finally:
            app.extensions["kwit"].close()
    assert response.status_code == 503
    assert elapsed < 3, elapsed


def test_a_webhook_stuck_behind_a_row_lock_is_answered_503(pg_db: str, tmp_path: Path) -> None:
    """A lock held elsewhere (a stuck job, a long migration) ends in 503 within the limit."""
    app = create_app(make_settings(pg_db, tmp_path, db_statement_timeout=0.5))
    rt = app.extensions["kwit"]
    with rt.sessions.begin() as session:
        order = make_order(session, provider="paynow")
        payment = make_payment(session, order, status="PENDING")
        payment_id, order_id = payment.provider_payment_id, order.id
    holder = make_engine(pg_db)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with holder.begin() as conn:
            conn.execute(
                sa.text("SELECT 1 FROM payments WHERE provider_payment_id = :p FOR UPDATE"),
                {"p": payment_id},
            )
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert locked.wait(5)
        body = (
            f'{{"paymentId":"{payment_id}","externalId":"{order_id}","status":"CONFIRMED",'
            '"modifiedAt":"2026-11-30T10:00:00"}'
        ).encode()
        started = time.monotonic()
        response = app.test_client().post(
            "/webhooks/paynow",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Signature": paynow.sign(body, PAYNOW_SIGNATURE_KEY),
            },
        )
        elapsed = time.monotonic() - started
    finally:
        release.set()
        thread.join()
        holder.dispose()
        rt.close()
    problem = assert_problem(response, 503)
    assert "database" in problem["detail"]
    assert elapsed < 3, elapsed
