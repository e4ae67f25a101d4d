"""Migrations: models and migrations agree, and `kwit db upgrade` is idempotent."""

import psycopg
import pytest
import sqlalchemy as sa
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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    return request.getfixturevalue("empty_pg_database")


def test_0003_turns_the_empty_payment_status_into_null_and_back(empty_database: str) -> None:
    """Rows survive the table rebuild on SQLite, with a refund's foreign key on the payment."""
    from alembic import command

    from models.migrate import alembic_config, upgrade

    upgrade(empty_database, "0002")
    order = (
        "INSERT INTO orders (id, external_ref, customer_ref, provider, currency, gross_minor, "
        "items, buyer_type, status, created_at, updated_at) VALUES ('o1', 'e1', 'c1', 'paynow', "
        "'PLN', 100, '[]', 'consumer', 'pending', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    payment = (
        "INSERT INTO payments (id, order_id, provider, provider_payment_id, status, amount_minor, "
        "currency, created_at, updated_at) VALUES (:id, 'o1', 'paynow', :id, :status, 100, "
        "'PLN', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    refund = (
        "INSERT INTO refunds (id, order_id, payment_id, provider, amount_minor, currency, status, "
        "created_at, updated_at) VALUES ('r1', 'o1', 'p1', 'paynow', 50, 'PLN', 'NEW', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(order))
            conn.execute(
                sa.text(payment), [{"id": "p1", "status": ""}, {"id": "p2", "status": "CONFIRMED"}]
            )
            conn.execute(sa.text(refund))
        statuses = sa.text("SELECT id, status FROM payments ORDER BY id")

        upgrade(empty_database)
        with engine.connect() as conn:
            assert conn.execute(statuses).all() == [("p1", None), ("p2", "CONFIRMED")]
            assert conn.execute(sa.text("SELECT payment_id FROM refunds")).scalar() == "p1"
            if engine.dialect.name == "sqlite":
                assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []

        command.downgrade(alembic_config(empty_database), "0002")
        with engine.connect() as conn:
            assert conn.execute(statuses).all() == [("p1", ""), ("p2", "CONFIRMED")]
    finally:
        engine.dispose()
