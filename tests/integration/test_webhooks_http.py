"""Webhooks over the app: answers, bad input, ordering, data minimisation (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import time

import pytest
import sqlalchemy as sa

from models import Base, Invoice, OrderStatus, OutboxItem, Payment, WebhookEvent
from tests.factories import make_order, make_payment
from tests.support import PAYNOW_SIGNATURE_KEY, STRIPE_SECRET, assert_problem, count_rows
from webhooks import paynow, samples, stripe

BUYER = samples.BUYER
# Everything that identifies the sample buyer; none of it may be stored in plain text or logged.
BUYER_STRINGS = (
    BUYER["name"],
    BUYER["name"].split()[2],  # the surname inside the company name
    BUYER["email"],
    BUYER["address"]["line1"],
    BUYER["address"]["postal_code"],
    BUYER["nip"],
)


def post_stripe(
    client,
    body: bytes,
    *,
    secret: str = STRIPE_SECRET,
    timestamp: int | None = None,
    header: str | None = None,
    content_type: str = "application/json",
):
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = header if header is not None else stripe.sign(body, secret, timestamp=stamp)
    return client.post(
        "/webhooks/stripe",
        data=body,
        content_type=content_type,
        headers={"Stripe-Signature": signature},
    )


def post_paynow(client, notification: dict, *, key: str = PAYNOW_SIGNATURE_KEY):
    body = json.dumps(notification).encode()
    return client.post(
        "/webhooks/paynow",
        data=body,
        content_type="application/json",
        headers={"Signature": paynow.sign(body, key)},
    )


def sample(event_type: str, **kw) -> bytes:
    return samples.encode(samples.sample_event(event_type, now=int(time.time()), **kw))


def rows(app, model):
    with app.extensions["kwit"].sessions() as session:
        return session.scalars(sa.select(model)).all()


def test_invoice_paid_creates_order_payment_invoice_and_outbox(client, app) -> None:
    response = post_stripe(client, sample("invoice.paid", suffix="one"))
    assert response.status_code == 200
    assert response.get_json() == {"outcome": "applied"}
    [payment] = rows(app, Payment)
    assert payment.status == "paid"
    assert payment.retain_until is not None
    [invoice] = rows(app, Invoice)
    assert invoice.gross_minor == payment.amount_minor == 12300
    [item] = rows(app, OutboxItem)
    assert item.ref_id == invoice.id
    [event] = rows(app, WebhookEvent)
    assert event.outcome.value == "applied"
    assert event.retention_basis
    assert event.retain_until


def test_duplicate_and_second_event_for_the_same_money(client, app) -> None:
    body = sample("invoice.paid", suffix="dup")
    assert post_stripe(client, body).get_json()["outcome"] == "applied"
    assert post_stripe(client, body).get_json()["outcome"] == "duplicate"
    # checkout.session.completed for the same PaymentIntent is another event about that money.
    second = post_stripe(client, sample("checkout.session.completed", suffix="dup"))
    assert second.get_json()["outcome"] == "stale"
    assert count_rows(app.extensions["kwit"].settings.database_url, "invoices") == 1
    assert count_rows(app.extensions["kwit"].settings.database_url, "orders") == 1


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("v0=dfb4777aaaec4ea29ff455dd4df7fe6b2ef71096ad3a93a158db7e100109ea91", "malformed_header"),
        ("t=abc,v1=00", "malformed_header"),
        ("garbage", "malformed_header"),
    ],
)
def test_malformed_headers_are_400(client, app, header, reason) -> None:
    body = assert_problem(post_stripe(client, sample("invoice.paid"), header=header), 400)
    assert body["reason"] == reason
    assert count_rows(app.extensions["kwit"].settings.database_url, "webhook_events") == 0


def test_signature_failures_have_their_reason(client, app) -> None:
    body = sample("invoice.paid", suffix="sig")
    now = int(time.time())
    v1 = stripe.sign(body, STRIPE_SECRET, timestamp=now).split("v1=")[1]
    cases = {
        "no_signature": post_stripe(client, body, header=f"t={now},v0={v1}"),
        "mismatch": post_stripe(client, body, secret="whsec_wrong"),
        "too_old": post_stripe(client, body, timestamp=now - 301),
        "too_new": post_stripe(client, body, timestamp=now + 301),
    }
    tampered = body.replace(b"12300", b"12301", 1)
    cases["mismatch_tampered"] = post_stripe(client, tampered, header=f"t={now},v1={v1}")
    for expected, response in cases.items():
        problem = assert_problem(response, 400)
        assert problem["reason"] == expected.removesuffix("_tampered")
        assert BUYER["email"] not in response.get_data(as_text=True)  # never echo the body
    assert count_rows(app.extensions["kwit"].settings.database_url, "webhook_events") == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b"[1, 2, 3]", 400),
        (b'{"id": "evt_x"}', 400),
        (b'{"id": 5, "type": "invoice.paid"}', 400),
        (
            b'{"id": "evt_y", "type": "invoice.paid", "data": {"object": {"id": "in_1", "amount_paid": "lots"}}}',
            400,
        ),
        (b"{" + b'"a":"' + b"x" * (2 * 1024 * 1024) + b'"}', 413),
    ],
    ids=["empty", "non-utf8", "array", "missing-fields", "wrong-type", "wrong-amount-type", "2MiB"],
)
def test_bad_input_never_500_and_stores_nothing(client, app, body, status) -> None:
    response = post_stripe(client, body)
    assert_problem(response, status)
    url = app.extensions["kwit"].settings.database_url
    for table in ("webhook_events", "orders", "payments", "invoices", "outbox"):
        assert count_rows(url, table) == 0, table


def test_wrong_content_type_is_415(client) -> None:
    assert_problem(post_stripe(client, sample("invoice.paid"), content_type="text/plain"), 415)


def test_database_down_is_503(tmp_path) -> None:
    from service.app import create_app
    from tests.support import make_settings

    app = create_app(make_settings("postgresql://nobody@127.0.0.1:1/none", tmp_path))
    try:
        response = post_stripe(app.test_client(), sample("invoice.paid"))
    finally:
        app.extensions["kwit"].close()
    assert_problem(response, 503)


def test_livemode_mismatch_and_unknown_types_are_ignored(client, app) -> None:
    live = post_stripe(client, sample("invoice.paid", suffix="live", livemode=True))
    assert live.get_json() == {"outcome": "ignored", "reason": "livemode_mismatch"}
    other = json.dumps(
        {
            "id": "evt_other",
            "object": "event",
            "type": "customer.created",
            "livemode": False,
            "data": {"object": {"id": "cus_1"}},
        }
    ).encode()
    assert post_stripe(client, other).get_json()["outcome"] == "ignored"
    assert count_rows(app.extensions["kwit"].settings.database_url, "orders") == 0


def notification(order_id: str, payment_id: str, status: str, modified_at: str) -> dict:
    return {
        "paymentId": payment_id,
        "externalId": order_id,
        "status": status,
        "modifiedAt": modified_at,
    }


def test_paynow_paid_order_never_flips_back(client, app) -> None:
    sessions = app.extensions["kwit"].sessions
    with sessions.begin() as session:
        order = make_order(session, vault=app.extensions["kwit"].vault)
        make_payment(session, order, status="NEW", provider_payment_id="NOLV-8F9-08K-WGD")
        order_id = order.id
    send = lambda status, at: post_paynow(  # noqa: E731
        client, notification(order_id, "NOLV-8F9-08K-WGD", status, at)
    ).get_json()["outcome"]
    assert send("PENDING", "2026-11-23T10:00:01") == "applied"
    assert send("CONFIRMED", "2026-11-23T10:00:05") == "applied"
    assert send("PENDING", "2026-11-23T10:00:03") == "stale"  # a late delivery
    assert send("REJECTED", "2026-11-23T10:00:09") == "stale"  # CONFIRMED is final
    with sessions() as session:
        [payment] = session.scalars(sa.select(Payment)).all()
        assert payment.status == "CONFIRMED"
        assert session.get(type(payment.order), order_id).status is OrderStatus.PAID
        assert len(session.scalars(sa.select(Invoice)).all()) == 1


def test_paynow_unknown_order_is_ignored_and_bad_signature_400(client, app) -> None:
    ok = post_paynow(
        client, notification("nope", "AAAA-BBB-CCC-DDD", "CONFIRMED", "2026-11-23T10:00:00")
    )
    assert ok.get_json() == {"outcome": "ignored", "reason": "unknown_order"}
    bad = post_paynow(client, notification("nope", "AAAA-BBB-CCC-DDD", "NEW", "x"), key="wrong")
    assert assert_problem(bad, 400)["reason"] == "mismatch"


def text_values(app) -> list[str]:
    """Every value of every text column in every table."""
    values: list[str] = []
    with app.extensions["kwit"].engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [
                c for c in table.columns if isinstance(c.type, sa.String | sa.Text | sa.JSON)
            ]
            for row in conn.execute(sa.select(*columns)) if columns else []:
                values.extend(json.dumps(v, ensure_ascii=False) for v in row if v is not None)
    return values


def test_no_buyer_data_in_plain_columns_or_logs(client, app, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        for event_type in samples.SAMPLE_TYPES:
            assert post_stripe(client, sample(event_type, suffix="pii")).status_code == 200
    stored = "\n".join(text_values(app))
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for needle in BUYER_STRINGS:
        assert needle not in stored, needle
        assert needle not in logged, needle
    # The billing data is there, but only encrypted, and decrypts with the key.
    with app.extensions["kwit"].sessions() as session:
        from models import Order

        [order] = session.scalars(sa.select(Order)).all()
        assert BUYER["email"].encode() not in order.billing
        assert app.extensions["kwit"].vault.decrypt(order.billing)["name"]


def test_new_stripe_order_is_one_statement_on_postgresql(pg_db, tmp_path) -> None:
    """The hot path (docs/BENCHMARKS.md): a new invoice.paid costs one SQL statement, not a dozen."""
    import psycopg

    from service.app import create_app
    from tests.support import make_settings

    statements: list[str] = []

    class CountingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            statements.append(str(query))
            return super().execute(query, params, **kwargs)

    def counted_app():
        # Redis on a dead port: the enqueue fails fast (left to the sweeper) and no job runs
        # inline, so every statement counted is ingestion's. The fast path talks to psycopg
        # directly, so statements are counted at the driver, below SQLAlchemy.
        app = create_app(make_settings(pg_db, tmp_path, redis_url="redis://127.0.0.1:1/3"))
        sa.event.listen(
            app.extensions["kwit"].engine,
            "connect",
            lambda dbapi_connection, _record: setattr(
                dbapi_connection, "cursor_factory", CountingCursor
            ),
        )
        return app

    body = sample("invoice.paid", suffix="fast")
    app, other = counted_app(), counted_app()
    try:
        assert post_stripe(app.test_client(), body).get_json() == {"outcome": "applied"}
        assert len(statements) == 1, statements
        statements.clear()
        assert post_stripe(app.test_client(), body).get_json() == {"outcome": "duplicate"}
        assert statements == []  # this process recorded it moments ago: no database at all
        # Another web node has not seen the event: one statement settles it.
        assert post_stripe(other.test_client(), body).get_json() == {"outcome": "duplicate"}
        assert len(statements) == 1
    finally:
        app.extensions["kwit"].close()
        other.extensions["kwit"].close()
    assert count_rows(pg_db, "outbox") == 1


def test_fast_path_half_done_by_a_race_undoes_itself(pg_db, tmp_path) -> None:
    """A payment committed mid-statement makes the one-statement path abort, not half-write.

    Another transaction holds an uncommitted payment with the event's payment id. The fast
    path's snapshot cannot see it, so it inserts the order and the event, then waits on that
    payment's unique key. When the other transaction commits, the payment insert does
    nothing; the statement must then undo its order and event and leave the event to the
    locking path, which applies it to the payment that won.
    """
    import threading

    from service.app import create_app
    from tests.support import make_settings

    body = sample("invoice.paid", suffix="race")
    event = stripe.normalise(json.loads(body))
    app = create_app(make_settings(pg_db, tmp_path, redis_url="redis://127.0.0.1:1/3"))
    rt = app.extensions["kwit"]
    winner = rt.sessions()
    try:
        order = make_order(winner, provider="stripe", external_ref="cs_checkout_first")
        make_payment(winner, order, status="pending", provider_payment_id=event.provider_payment_id)
        winner.flush()  # written, not committed: invisible to the webhook's snapshot

        answers = []
        request = threading.Thread(
            target=lambda: answers.append(post_stripe(app.test_client(), body).get_json())
        )
        request.start()
        _wait_until_blocked_on_a_lock(rt.engine)
        winner.commit()
        request.join(30)
    finally:
        winner.close()
        rt.close()

    assert answers == [{"outcome": "applied"}]
    with make_engine_for(pg_db) as conn:
        orders = conn.execute(sa.text("SELECT external_ref, status FROM orders")).all()
        events = conn.execute(sa.text("SELECT order_id FROM webhook_events")).scalars().all()
    assert orders == [("cs_checkout_first", "paid")]  # no half-written order for the invoice
    assert events == [order.id]
    assert count_rows(pg_db, "payments") == 1
    assert count_rows(pg_db, "invoices") == 1
    assert count_rows(pg_db, "outbox") == 1


def _wait_until_blocked_on_a_lock(engine, timeout: float = 10.0) -> None:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while conn.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "the webhook never reached the payment insert"
            time.sleep(0.02)
            conn.rollback()


class make_engine_for:
    """A short-lived connection for assertions, outside the app."""

    def __init__(self, url: str) -> None:
        from models.session import make_engine

        self._engine = make_engine(url)

    def __enter__(self):
        self._conn = self._engine.connect()
        return self._conn

    def __exit__(self, *exc) -> None:
        self._conn.close()
        self._engine.dispose()
