"""Shared fixtures: real PostgreSQL and Redis (isolated per run), SQLite, the app and API keys.

KWIT_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) names a server and a
maintenance database; each run creates its own database on it and drops it at the end, so two
runs at once never collide. KWIT_TEST_REDIS_URL (default redis://127.0.0.1:6379/13) names a
Redis db other than 0; each run uses its own queue name. With KWIT_REQUIRE_SERVICES=1 a missing
service fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from sqlalchemy.engine import make_url

from models import Base, Role
from models.migrate import upgrade
from models.session import make_engine
from service.app import create_app
from service.config import Settings
from tests.support import RUN_ID, TEST_FERNET_KEY, make_settings  # noqa: F401

REQUIRE_SERVICES = os.environ.get("KWIT_REQUIRE_SERVICES") == "1"
SERVICES_USED: dict[str, str] = {}


def service_unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (KWIT_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run."""
    base = os.environ.get("KWIT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"kwit_test_{RUN_ID}"
    conninfo = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL unavailable at {base}: {exc}")
    with admin:
        version = admin.execute("SHOW server_version").fetchone()[0]
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    SERVICES_USED["postgresql"] = f"PostgreSQL {version}, database {name}"
    yield url
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "kwit.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


def clean_database(url: str) -> None:
    """Empty every table (children first), keeping the schema."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL, each time with empty tables."""
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    clean_database(url)
    return url


@pytest.fixture
def pg_db(pg_url: str) -> str:
    """PostgreSQL only, empty tables."""
    clean_database(pg_url)
    return pg_url


# ---------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("KWIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    client = redis_lib.Redis.from_url(url, socket_connect_timeout=2)
    try:
        info = client.info("server")
    except redis_lib.RedisError as exc:
        service_unavailable(f"Redis unavailable at {url}: {exc}")
    finally:
        client.close()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    if db == 0:
        pytest.fail("KWIT_TEST_REDIS_URL must name a Redis db other than 0", pytrace=False)
    SERVICES_USED["redis"] = f"Redis {info['redis_version']}, db {db}"
    return url


@pytest.fixture
def queue_name(redis_url: str) -> Iterator[str]:
    """A queue name private to this test; its RQ keys are removed afterwards."""
    name = f"kwit-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    yield name
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


# ---------------------------------------------------------------- the app


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    application = create_app(settings)
    yield application
    application.extensions["kwit"].close()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def make_key(app: Any) -> Callable[[str], str]:
    """Create an API key with the given role; returns the bearer token."""
    from service.auth import create_key

    def make(role: str, name: str | None = None) -> str:
        with app.extensions["kwit"].sessions.begin() as session:
            created = create_key(session, name=name or f"{role}-key", role=Role(role))
        return created.token

    return make


# ---------------------------------------------------------------- emulators


@pytest.fixture
def paynow_emulator() -> Iterator[str]:
    """Base URL of a PayNow emulator running in a thread for this test."""
    from emulators import paynow
    from tests.support import PAYNOW_API_KEY, PAYNOW_SIGNATURE_KEY

    server, base = paynow.start_in_thread(
        api_key=PAYNOW_API_KEY, signature_key=PAYNOW_SIGNATURE_KEY, notify_url=None
    )
    yield base
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- reporting


def pytest_terminal_summary(terminalreporter: Any) -> None:
    used = ", ".join(SERVICES_USED.values()) or "none"
    terminalreporter.write_line(f"Real services exercised by this run: {used}")
