"""The suite runs against real PostgreSQL and Redis; this proves both answer and hold data."""

import redis as redis_lib
import sqlalchemy as sa

from models.migrate import current_revision, head_revision
from models.session import make_engine


def test_postgresql_is_real_and_migrated(pg_db: str) -> None:
    engine = make_engine(pg_db)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        assert engine.dialect.name == "postgresql"
        assert version
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_redis_is_real_and_not_db_zero(redis_url: str, queue_name: str) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    key = f"{queue_name}:probe"
    client.set(key, "1", ex=30)
    assert client.get(key) == b"1"
    assert client.connection_pool.connection_kwargs["db"] != 0
    client.delete(key)
