"""Failed authentication is throttled per address and per key prefix, with bounded writes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from models import AuditEntry, LoginAttempt, Role
from service.app import create_app
from service.auth import create_key
from tests.support import assert_problem, auth, make_settings

LIMIT = 10


def count(app, model) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["kwit"].sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_burst_of_wrong_keys_is_429_after_the_limit_and_writes_few_rows(
    db_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(db_url, tmp_path, auth_failure_limit=LIMIT))
    try:
        client = app.test_client()
        statuses = [
            client.get("/v1/whoami", headers=auth(f"kwit_{i:08x}_{'x' * 30}")).status_code
            for i in range(1000)
        ]
        assert statuses[:LIMIT] == [401] * LIMIT
        assert set(statuses[LIMIT:]) == {429}
        refused = client.get("/v1/whoami", headers=auth("kwit_00000001_" + "y" * 30))
        problem = assert_problem(refused, 429)
        assert problem["reason"] == "throttled"
        assert 1 <= int(refused.headers["Retry-After"]) <= 300
        # The failures up to the limit and the one that tripped it; nothing after.
        assert count(app, LoginAttempt) == LIMIT + 1
    finally:
        app.extensions["kwit"].close()


def test_the_throttle_is_shared_by_every_process_through_redis(
    db_url: str, tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    settings = make_settings(
        db_url, tmp_path, auth_failure_limit=3, redis_url=redis_url, queue_name=queue_name
    )
    first, second = create_app(settings), create_app(settings)
    try:
        bad = auth(f"kwit_{queue_name[-8:].lower().replace('-', '0')}_{'x' * 30}")
        seen = [first.test_client().get("/v1/whoami", headers=bad).status_code for _ in range(2)]
        seen += [second.test_client().get("/v1/whoami", headers=bad).status_code for _ in range(2)]
        assert seen == [401, 401, 401, 429]
    finally:
        redis = first.extensions["kwit"].redis
        for key in redis.scan_iter(match=f"kwit:throttle:{queue_name}:*"):
            redis.delete(key)
        first.extensions["kwit"].close()
        second.extensions["kwit"].close()


def test_guessing_at_a_prefix_does_not_lock_out_its_holder(db_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(db_url, tmp_path, auth_failure_limit=3))
    try:
        with app.extensions["kwit"].sessions.begin() as session:
            token = create_key(session, name="saas", role=Role.BACKEND).token
        prefix = token.split("_")[1]
        guesser = {"REMOTE_ADDR": "198.51.100.9"}
        client = app.test_client()
        guesses = [
            client.get(
                "/v1/whoami", headers=auth(f"kwit_{prefix}_{'z' * 30}"), environ_base=guesser
            ).status_code
            for _ in range(5)
        ]
        assert guesses == [401, 401, 401, 429, 429]
        assert client.get("/v1/whoami", headers=auth(token)).status_code == 200
    finally:
        app.extensions["kwit"].close()


def test_unauthenticated_bad_input_is_401_not_a_validation_answer(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/legal-holds", json={"scope": "\x00" * 5000})
    assert assert_problem(response, 401)["reason"] == "missing"
    assert "errors" not in response.get_json()


def test_a_403_and_the_filters_of_a_list_are_audited(client, app, make_key) -> None:  # type: ignore[no-untyped-def]
    accountant = make_key("accountant", "biuro")
    assert client.get("/v1/legal-holds", headers=auth(accountant)).status_code == 403
    client.get("/v1/invoices?state=issued&from=2026-11-01", headers=auth(accountant))
    with app.extensions["kwit"].sessions() as session:
        entries = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.at)).all()
    assert [e.action for e in entries] == [
        "forbidden GET legal_holds.list_holds",
        "GET invoices.list_invoices",
    ]
    assert entries[1].details == {"query": {"state": "issued", "from": "2026-11-01"}}
