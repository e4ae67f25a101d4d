"""What may be said about a database error without leaking the data that caused it.

PostgreSQL's messages quote values: "Failing row contains (…)" names every column of the row,
"Key (external_ref)=(…)" the key, and "invalid input syntax … \"…\"" the input. Logs, job
failures kept in Redis and answers get only the SQLSTATE, the names of the table, column and
constraint involved, and the statement's verb and table: identifiers of the schema, not data.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.I)
_READ = re.compile(r"\b(SELECT)\b.*?\bFROM\s+\"?(\w+)", re.I | re.S)


def is_database_error(exc: BaseException | None) -> bool:
    """A DB-API error (psycopg, sqlite3), or SQLAlchemy's wrapper of one, anywhere in the chain."""
    return _database_cause(exc) is not None


def describe(exc: BaseException) -> dict[str, Any]:
    """Safe fields for a log line: sqlstate, error class, statement, table, column, constraint."""
    fields: dict[str, Any] = {"db_error": type(exc).__name__}
    cause = _database_cause(exc)
    orig = getattr(exc, "orig", None) or cause
    if orig is not None:
        fields["db_error"] = type(orig).__name__
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate:
            fields["sqlstate"] = sqlstate
        diag = getattr(orig, "diag", None)
        for name in ("table_name", "column_name", "constraint_name"):
            value = getattr(diag, name, None) if diag is not None else None
            if value:
                fields[name.removesuffix("_name")] = value
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        fields["statement"] = statement_name(statement)
    return fields


def statement_name(sql: str) -> str:
    """'INSERT orders', 'UPDATE invoices', … (a CTE statement is named by its first write)."""
    match = _WRITE.search(sql) or _READ.search(sql)
    if match is None:
        return sql.split(None, 1)[0].upper() if sql.strip() else "?"
    verb = match.group(1).split()[0].upper()
    return f"{verb} {match.group(2)}"


def _database_cause(exc: BaseException | None) -> BaseException | None:
    for _ in range(10):  # a bounded walk down the cause chain
        if exc is None:
            return None
        if isinstance(exc, sa.exc.DBAPIError) or type(exc).__module__.split(".")[0] in (
            "psycopg",
            "sqlite3",
        ):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
