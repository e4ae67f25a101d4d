"""Pooled PostgreSQL connections survive the server dropping them while they sat idle."""

import pytest
import sqlalchemy as sa

from models.session import make_engine


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(engine: sa.Engine, pid: int) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()


def test_an_idle_connection_cut_by_the_server_is_replaced_not_failed(pg_db: str) -> None:
    engine = make_engine(pg_db, pool_size=1, max_overflow=1, idle_ping_after=0.0)
    admin = make_engine(pg_db, poolclass=sa.pool.NullPool)
    try:
        first = _backend_pid(engine)
        _terminate(admin, first)  # e.g. a server restart or an idle-session timeout

        second = _backend_pid(engine)

        assert second != first
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_cut_while_in_recent_use_fails_once_then_the_pool_recovers(
    pg_db: str,
) -> None:
    # Recently used connections are not pinged (that round trip was on every webhook), so a
    # cut right after use surfaces once, as a disconnect (a 503 to the caller, which retries).
    engine = make_engine(pg_db, pool_size=1, max_overflow=0, idle_ping_after=3600.0)
    admin = make_engine(pg_db, poolclass=sa.pool.NullPool)
    try:
        first = _backend_pid(engine)
        _terminate(admin, first)

        with pytest.raises(sa.exc.OperationalError) as failure:
            _backend_pid(engine)
        assert failure.value.connection_invalidated

        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
        admin.dispose()
