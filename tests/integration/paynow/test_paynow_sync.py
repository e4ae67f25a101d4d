"""`kwit paynow sync` heals missed notifications and follows refunds (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner

from models import (
    Invoice,
    InvoiceKind,
    Order,
    OrderStatus,
    OutboxItem,
    Payment,
    Refund,
    RefundStatus,
    utcnow,
)
from service.app import create_app
from service.cli import cli
from service.worker import paynow_sync_once as sync_once
from tests.factories import make_order, make_payment
from tests.support import (
    PAYNOW_API_KEY,
    PAYNOW_SIGNATURE_KEY,
    TEST_FERNET_KEY,
    auth,
    make_settings,
)
from webhooks.paynow_client import PaynowAuthError
from webhooks.refunds import RESUME_WINDOW

ZERO = timedelta(0)


def emulator_post(paynow_emulator: str, path: str, body: Any = None) -> dict:
    response = requests.post(f"{paynow_emulator}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def create_order(client, token: str) -> dict:
    body = {
        "external_ref": f"shop-{uuid.uuid4().hex[:10]}",
        "customer_ref": "cust-3",
        "currency": "PLN",
        "provider": "paynow",
        "items": [{"name": "Plan Pro", "quantity": 1, "unit_gross_minor": 12300, "vat_rate": "23"}],
        "buyer": {
            "name": "Anna Przykładowa",
            "email": "anna@example.pl",
            "address": {"line1": "ul. Krótka 2", "postal_code": "80-001", "city": "Gdańsk"},
        },
    }
    headers = auth(token) | {"Idempotency-Key": str(uuid.uuid4())}
    response = client.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def state(app, order_id: str) -> tuple[str, str, int, int]:
    """(order status, payment status, sale invoices, their outbox rows)."""
    with app.extensions["kwit"].sessions() as session:
        order = session.get(Order, order_id)
        payment = session.scalars(sa.select(Payment).where(Payment.order_id == order_id)).one()
        invoices = session.scalars(sa.select(Invoice.id).where(Invoice.order_id == order_id)).all()
        outbox = session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.ref_id.in_(invoices or [""]))
        )
        return order.status.value, payment.status, len(invoices), outbox


def cli_env(app, paynow_emulator: str, tmp_path) -> dict[str, str]:
    settings = app.extensions["kwit"].settings
    return {
        "KWIT_DATABASE_URL": settings.database_url,
        "KWIT_ENCRYPTION_KEYS": TEST_FERNET_KEY,
        "KWIT_PAYNOW_API_KEY": PAYNOW_API_KEY,
        "KWIT_PAYNOW_SIGNATURE_KEY": PAYNOW_SIGNATURE_KEY,
        "KWIT_PAYNOW_BASE_URL": paynow_emulator,
        "KWIT_IFIRMA_BASE_URL": "http://127.0.0.1:9/iapi",  # never the real iFirma
        "KWIT_BLOB_DIR": str(tmp_path / "blobs"),
    }


def test_missed_notification_is_healed_by_the_cli(
    client, app, make_key, paynow_emulator, tmp_path
) -> None:
    emulator_post(paynow_emulator, "/__emulator__/faults", {"notify": False})
    order = create_order(client, make_key("backend"))
    payment_id = order["payments"][0]["provider_payment_id"]
    paid = emulator_post(paynow_emulator, f"/paywall/{payment_id}/pay")
    assert paid["status"] == "CONFIRMED"
    assert all(n["deliveries"] == [] for n in paid["notifications"])  # nothing reached Kwit
    assert state(app, order["id"]) == ("pending", "NEW", 0, 0)

    env = cli_env(app, paynow_emulator, tmp_path)
    result = CliRunner().invoke(cli, ["paynow", "sync", "--min-age", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 checked, 1 updated, 1 paid" in result.output
    assert state(app, order["id"]) == ("paid", "CONFIRMED", 1, 1)

    again = CliRunner().invoke(cli, ["paynow", "sync", "--min-age", "0"], env=env)
    assert "payments: 0 checked" in again.output  # CONFIRMED is final: no longer polled
    assert state(app, order["id"]) == ("paid", "CONFIRMED", 1, 1)


def test_min_age_defaults_to_the_setting(client, app, make_key, paynow_emulator, tmp_path) -> None:
    order = create_order(client, make_key("backend"))
    emulator_post(paynow_emulator, "/__emulator__/faults", {"notify": False})
    emulator_post(paynow_emulator, f"/paywall/{order['payments'][0]['provider_payment_id']}/pay")
    env = cli_env(app, paynow_emulator, tmp_path) | {"KWIT_PAYNOW_SYNC_AGE": "900"}
    result = CliRunner().invoke(cli, ["paynow", "sync"], env=env)
    assert result.exit_code == 0, result.output
    assert "payments: 0 checked" in result.output  # created seconds ago: not yet
    assert state(app, order["id"])[:2] == ("pending", "NEW")


def test_polled_final_status_applies_and_keeps_the_notification_time(
    client, app, make_key, paynow_emulator
) -> None:
    """EXPIRED polled without modifiedAt: applied by reachability, provider time untouched."""
    order = create_order(client, make_key("backend"))
    payment_id = order["payments"][0]["provider_payment_id"]
    rt = app.extensions["kwit"]
    with rt.sessions.begin() as session:
        session.execute(
            sa.update(Payment)
            .where(Payment.provider_payment_id == payment_id)
            .values(status="PENDING", provider_modified_at="2026-11-23T10:00:00")
        )
    emulator_post(paynow_emulator, "/__emulator__/faults", {"notify": False})
    emulator_post(
        paynow_emulator, f"/__emulator__/payments/{payment_id}/status", {"status": "EXPIRED"}
    )
    report = sync_once(rt, min_age=ZERO)
    assert (report.payments_updated, report.payments_paid) == (1, 0)
    with rt.sessions() as session:
        payment = session.scalars(sa.select(Payment)).one()
        assert (payment.status, payment.provider_modified_at) == ("EXPIRED", "2026-11-23T10:00:00")
        assert session.get(Order, order["id"]).status is OrderStatus.FAILED


def test_unchanged_payments_wait_min_age_again(client, app, make_key, paynow_emulator) -> None:
    create_order(client, make_key("backend"))
    rt = app.extensions["kwit"]
    assert sync_once(rt, min_age=ZERO).payments_checked == 1
    # Still NEW at PayNow: checked, touched, and left alone until it is min_age old again.
    assert sync_once(rt, min_age=timedelta(minutes=5)).payments_checked == 0


def test_unknown_payment_is_counted_and_the_rest_goes_on(
    client, app, make_key, paynow_emulator
) -> None:
    good = create_order(client, make_key("backend"))
    rt = app.extensions["kwit"]
    with rt.sessions.begin() as session:
        ghost = make_order(session, vault=rt.vault)
        make_payment(session, ghost, status="NEW", provider_payment_id="GHST-000-000-000")
    emulator_post(paynow_emulator, "/__emulator__/faults", {"notify": False})
    emulator_post(paynow_emulator, f"/paywall/{good['payments'][0]['provider_payment_id']}/pay")
    report = sync_once(rt, min_age=ZERO)
    assert (report.payments_checked, report.errors, report.payments_paid) == (2, 1, 1)
    assert state(app, good["id"])[:2] == ("paid", "CONFIRMED")


def test_wrong_credentials_stop_the_run(client, app, make_key, paynow_emulator, tmp_path) -> None:
    create_order(client, make_key("backend"))
    env = cli_env(app, paynow_emulator, tmp_path) | {"KWIT_PAYNOW_API_KEY": "wrong"}
    result = CliRunner().invoke(cli, ["paynow", "sync", "--min-age", "0"], env=env)
    assert result.exit_code == 1
    assert "PayNow refused the credentials" in result.output
    bad = create_app(
        make_settings(
            app.extensions["kwit"].settings.database_url,
            tmp_path,
            paynow_base_url=paynow_emulator,
            paynow_signature_key="wrong",
        )
    )
    try:
        with pytest.raises(PaynowAuthError):
            sync_once(bad.extensions["kwit"], min_age=ZERO)
    finally:
        bad.extensions["kwit"].close()


def test_without_paynow_there_is_nothing_to_sync(db_url, tmp_path) -> None:
    bare = create_app(make_settings(db_url, tmp_path, paynow_api_key=None))
    try:
        assert sync_once(bare.extensions["kwit"]) is None
    finally:
        bare.extensions["kwit"].close()
    env = {"KWIT_DATABASE_URL": db_url, "KWIT_BLOB_DIR": str(tmp_path / "blobs")}
    result = CliRunner().invoke(cli, ["paynow", "sync"], env=env)
    assert result.exit_code == 1
    assert "PayNow is not configured" in result.output


def test_refund_is_followed_to_successful_once(client, app, make_key, paynow_emulator) -> None:
    rt = app.extensions["kwit"]
    order = create_order(client, make_key("backend"))
    emulator_post(paynow_emulator, f"/paywall/{order['payments'][0]['provider_payment_id']}/pay")
    assert sync_once(rt, min_age=ZERO).payments_paid == 1
    headers = auth(make_key("backend", "refunder")) | {"Idempotency-Key": "refund-1"}
    created = client.post(
        f"/v1/orders/{order['id']}/refunds",
        json={"amount_minor": 12300, "reason": "REFUND_BEFORE_14"},
        headers=headers,
    )
    assert created.status_code == 201
    emulator_post(paynow_emulator, "/__emulator__/faults", {"refund_auto_advance": False})
    assert sync_once(rt, min_age=ZERO).refunds_updated == 0  # still NEW at PayNow
    emulator_post(
        paynow_emulator, f"/__emulator__/refunds/{created.get_json()['provider_refund_id']}/advance"
    )
    emulator_post(
        paynow_emulator, f"/__emulator__/refunds/{created.get_json()['provider_refund_id']}/advance"
    )
    report = sync_once(rt, min_age=ZERO)
    assert (report.refunds_updated, report.refunds_completed, len(report.outbox_ids)) == (1, 1, 1)
    with rt.sessions() as session:
        refund = session.scalars(sa.select(Refund)).one()
        assert refund.status is RefundStatus.SUCCESSFUL
        assert session.get(Order, order["id"]).status is OrderStatus.REFUNDED
        corrections = session.scalars(
            sa.select(Invoice).where(Invoice.kind == InvoiceKind.CORRECTION)
        ).all()
        assert [c.refund_id for c in corrections] == [refund.id]
    assert sync_once(rt, min_age=ZERO).refunds_checked == 0


def test_old_refund_without_paynow_id_is_left_for_a_human(app, paynow_emulator) -> None:
    rt = app.extensions["kwit"]
    old = utcnow() - RESUME_WINDOW - timedelta(minutes=1)
    with rt.sessions.begin() as session:
        order = make_order(session, status=OrderStatus.PAID)
        payment = make_payment(session, order, paid_at=old)
        session.add(
            Refund(
                order_id=order.id,
                payment_id=payment.id,
                provider="paynow",
                amount_minor=100,
                currency="PLN",
                reason="OTHER",
                status=RefundStatus.NEW,
                created_at=old,
                updated_at=old,
            )
        )
    report = sync_once(rt, min_age=ZERO)
    assert (report.refunds_checked, report.refunds_unresolved, report.refunds_resumed) == (1, 1, 0)
    assert (
        requests.get(f"{paynow_emulator}/__emulator__/state", timeout=5).json()["counts"]["refunds"]
        == 0
    )
