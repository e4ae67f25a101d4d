"""API keys: 401 for missing/invalid/revoked keys, 403 for the wrong role, audit rows, no secrets in logs."""

import logging

import pytest
import sqlalchemy as sa

from models import AuditEntry, LoginAttempt
from service.auth import revoke_key
from tests.support import assert_problem, auth


def rows(app, model):
    with app.extensions["kwit"].sessions() as session:
        return session.scalars(sa.select(model)).all()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("Bearer nonsense", "malformed"),
        ("Basic a2l3aXQ6cGFzcw==", "malformed"),
        ("Bearer kwit_0000abcd_" + "x" * 43, "invalid"),
    ],
)
def test_missing_or_invalid_key_is_401(client, app, header, reason) -> None:
    headers = {"Authorization": header} if header else {}
    body = assert_problem(client.get("/v1/whoami", headers=headers), 401)
    assert body["reason"] == reason
    attempts = rows(app, LoginAttempt)
    assert [a.reason for a in attempts] == [reason]


def test_right_secret_with_wrong_prefix_and_tampered_secret_are_401(client, make_key) -> None:
    token = make_key("backend")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_problem(client.get("/v1/whoami", headers=auth(tampered)), 401)


def test_revoked_key_is_401(client, app, make_key) -> None:
    token = make_key("backend", "ci")
    assert client.get("/v1/whoami", headers=auth(token)).status_code == 200
    with app.extensions["kwit"].sessions.begin() as session:
        from models import utcnow

        assert revoke_key(session, token.split("_")[1], now=utcnow()) == 1
    body = assert_problem(client.get("/v1/whoami", headers=auth(token)), 401)
    assert body["reason"] == "revoked"


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("backend", "/v1/orders?external_ref=x", 404),
        ("backend", "/v1/invoices", 403),
        ("accountant", "/v1/invoices", 200),
        ("accountant", "/v1/orders?external_ref=x", 403),
        ("admin", "/v1/invoices", 200),
        ("admin", "/v1/orders?external_ref=x", 404),
    ],
)
def test_roles(client, make_key, role, path, status) -> None:
    response = client.get(path, headers=auth(make_key(role)))
    assert response.status_code == status
    if status == 403:
        assert_problem(response, 403)


def test_accountant_and_admin_requests_are_audited(client, app, make_key) -> None:
    client.get("/v1/invoices", headers=auth(make_key("accountant", "books")))
    client.get("/v1/whoami", headers=auth(make_key("admin", "ops")))
    client.get("/v1/whoami", headers=auth(make_key("backend", "saas")))
    entries = sorted(rows(app, AuditEntry), key=lambda e: e.at)
    assert [(e.action, e.object) for e in entries] == [
        ("GET invoices.list_invoices", "/v1/invoices"),
        ("GET whoami.whoami", "/v1/whoami"),
    ]
    assert entries[0].actor.startswith("books (")
    assert entries[0].remote_addr == "127.0.0.1"
    assert all(e.at.tzinfo is not None for e in entries)


def test_no_secret_reaches_a_log_line(client, make_key, caplog) -> None:
    token = make_key("backend")
    secret = token.split("_", 2)[2]
    with caplog.at_level(logging.DEBUG):
        client.get("/v1/invoices", headers=auth(token))  # 403
        client.get("/v1/whoami", headers=auth(token[:-2] + "zz"))  # 401
        client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}x"})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "authentication failed" in logged
    assert secret not in logged
    assert secret[:12] not in logged


def test_failed_authentications_are_counted(client) -> None:
    client.get("/v1/whoami")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'kwit_auth_failures_total{reason="missing"}' in metrics
