"""Migrations: models and migrations agree, and `kwit db upgrade` is idempotent."""

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from models import Base
from models.session import make_engine
from service.cli import cli
from tests.support import RUN_ID


def test_autogenerate_finds_no_difference(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


@pytest.fixture
def empty_pg_database(pg_url: str):
    server = make_url(pg_url).set(drivername="postgresql", database="postgres")
    conninfo = server.render_as_string(hide_password=False)
    name = f"kwit_empty_{RUN_ID}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_kwit_db_upgrade_twice_on_empty_postgresql(empty_pg_database: str) -> None:
    runner_env = {"KWIT_DATABASE_URL": empty_pg_database}
    from click.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade"], env=runner_env)
    assert result.exit_code == 0, result.output
    assert "migrated from empty to" in result.output
    again = runner.invoke(cli, ["db", "upgrade"], env=runner_env)
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output
    engine = make_engine(empty_pg_database)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
