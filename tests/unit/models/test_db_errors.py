"""Database errors are described by schema names only, never by the data they quote."""

import sqlite3

import pytest
import sqlalchemy as sa

from models.db_errors import describe, is_database_error, statement_name


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("INSERT INTO orders (id) VALUES (%(id)s)", "INSERT orders"),
        ('UPDATE "invoices" SET state=%(s)s', "UPDATE invoices"),
        ("DELETE FROM audit_log WHERE at < %(t)s", "DELETE audit_log"),
        ("SELECT id, name\nFROM payments WHERE id = 1", "SELECT payments"),
        ("WITH known AS (SELECT 1 FROM payments) INSERT INTO orders", "INSERT orders"),
        ("VACUUM", "VACUUM"),
    ],
)
def test_statement_names(sql: str, name: str) -> None:
    assert statement_name(sql) == name


def test_a_wrapped_driver_error_is_described_without_its_message() -> None:
    orig = sqlite3.IntegrityError("CHECK constraint failed: Failing row contains (Jan Kowalski)")
    exc = sa.exc.IntegrityError("INSERT INTO orders (name) VALUES (?)", {"name": "x"}, orig)
    fields = describe(exc)
    assert fields == {"db_error": "IntegrityError", "statement": "INSERT orders"}
    assert "Kowalski" not in repr(fields)


def test_a_database_error_is_found_down_the_cause_chain() -> None:
    outer = RuntimeError("job failed")
    outer.__cause__ = sqlite3.OperationalError("database is locked")
    assert is_database_error(outer)
    assert not is_database_error(ValueError("not a database error"))
    assert not is_database_error(None)
