"""Engine and session factory. The only place that knows how to connect to the database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way (postgresql://…)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's lazy BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# A pooled connection idle for longer than this is pinged before use (see _ping_when_idle).
IDLE_PING_AFTER = 10.0  # seconds


@dataclass(frozen=True)
class Timeouts:
    """How long a PostgreSQL connection may wait on the network or on one statement.

    Without them a partitioned or hung server holds every request until gunicorn kills the
    worker; with them the request fails fast and is answered 503, and the provider retries.
    """

    connect: float = 3.0  # seconds to establish a connection
    statement: float = 30.0  # seconds one statement may run on the server (0: no limit)
    # Seconds sent data may stay unacknowledged before the kernel drops the connection: what
    # ends a request stuck on a black-holed server (keepalives only cover idle connections).
    network: float = 10.0


def _postgres_connect_args(url: str, timeouts: Timeouts) -> dict[str, Any]:
    """libpq connection parameters; values given in the URL's query string take precedence."""
    given = make_url(url).query
    args: dict[str, Any] = {
        "connect_timeout": max(1, round(timeouts.connect)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": round(timeouts.network * 1000),
    }
    if timeouts.statement:
        args["options"] = f"-c statement_timeout={round(timeouts.statement * 1000)}"
    return {key: value for key, value in args.items() if key not in given}


def make_engine(
    url: str,
    *,
    idle_ping_after: float = IDLE_PING_AFTER,
    timeouts: Timeouts | None = None,
    **kwargs: Any,
) -> sa.Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout.

    PostgreSQL connections that sat idle in the pool are pinged before use, so a restarted
    server or a dropped connection costs a reconnect, not a failed request; every connection
    carries the connect, statement and network `timeouts`.
    """
    url = normalise_url(url)
    # Statement parameters never appear in error messages or logs: they can carry buyer data.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite has no SELECT … FOR UPDATE: take the write lock at BEGIN, so two transactions
        # that read then write serialise instead of failing with "database is locked".
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
        # Waiting longer for a pooled connection than a provider waits for its answer only
        # turns a 503 into a timeout.
        kwargs.setdefault("pool_timeout", 5)
    connect_args = _postgres_connect_args(url, timeouts or Timeouts())
    kwargs["connect_args"] = {**connect_args, **kwargs.get("connect_args", {})}
    engine = sa.create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, idle_ping_after)
    return engine


def _ping_when_idle(engine: sa.Engine, after: float) -> None:
    """Ping a pooled connection before use only if it has been idle for `after` seconds.

    SQLAlchemy's pool_pre_ping pings on every checkout: an extra round trip that profiling
    found on every webhook request. A connection that was in use moments ago is alive; one
    that sat idle may have been cut by a server restart, a failover or a firewall. A failed
    ping raises DisconnectionError, on which the pool discards the connection and connects
    afresh (SQLAlchemy's documented recipe for custom pessimistic disconnect handling).
    """

    @sa.event.listens_for(engine, "checkin")
    def _stamp(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError("idle connection failed its ping") from exc


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
