"""KWIT_TRUSTED_PROXIES: audit and sign-in rows carry the client's address, not the proxy's."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from models import AuditEntry, LoginAttempt, Role
from service.app import create_app
from service.auth import create_key
from tests.support import auth, make_settings

CLIENT = "203.0.113.7"


def addresses(app, model) -> list[str | None]:  # type: ignore[no-untyped-def]
    with app.extensions["kwit"].sessions() as session:
        return list(session.scalars(sa.select(model.remote_addr)))


@pytest.mark.parametrize(("hops", "expected"), [(1, CLIENT), (0, "127.0.0.1")])
def test_the_forwarded_address_is_used_only_behind_trusted_proxies(
    db_url: str, tmp_path: Path, hops: int, expected: str
) -> None:
    app = create_app(make_settings(db_url, tmp_path, trusted_proxies=hops))
    try:
        with app.extensions["kwit"].sessions.begin() as session:
            token = create_key(session, name="biuro", role=Role.ACCOUNTANT).token
        client = app.test_client()
        forwarded = {"X-Forwarded-For": CLIENT}
        ok = client.get("/v1/invoices", headers={**auth(token), **forwarded})
        bad = client.get("/v1/invoices", headers={**auth("kwit_aaaaaaaa_" + "x" * 30), **forwarded})
        assert (ok.status_code, bad.status_code) == (200, 401)
        assert addresses(app, AuditEntry) == [expected]
        assert addresses(app, LoginAttempt) == [expected]
    finally:
        app.extensions["kwit"].close()
