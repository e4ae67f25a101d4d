"""Structured JSON logs with a request id. Bodies and secrets are never logged."""

from __future__ import annotations

import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from models.db_errors import describe, is_database_error

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or "-" outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


# Text that marks a database error's message inside a log line written by a library (RQ logs a
# failed job's whole traceback as its message): everything from there on is withheld.
_DATABASE_ERROR_TEXT = re.compile(r"(psycopg\.|sqlite3\.|sqlalchemy\.exc\.)")
_QUERY_STRING = re.compile(r"\?[^\s'\"]*")
# Loggers that would print data at DEBUG: urllib3 logs every URL with its query string (the
# iFirma invoice search carries the buyer's NIP), SQLAlchemy logs result rows.
_QUIET_LOGGERS = {"urllib3": logging.INFO, "sqlalchemy": logging.WARNING}


class RedactDatabaseErrors(logging.Filter):
    """Keep data out of log lines: database errors and third-party URLs say only what is safe.

    A database error keeps its SQLSTATE, statement, table, column and constraint names
    (models/db_errors.py); its message and traceback, which quote the failing row, are dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if is_database_error(exc):
            assert exc is not None
            for key, value in describe(exc).items():
                setattr(record, key, value)
            record.exc_info = record.exc_text = None
        message = record.getMessage()
        if record.name.startswith(("urllib3", "requests", "werkzeug")):
            message = _QUERY_STRING.sub("?…", message)
        leak = _DATABASE_ERROR_TEXT.search(message)
        if leak is not None:
            message = message[: leak.start()] + "[database error details withheld]"
        record.msg, record.args = message, None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr. Idempotent: repeated app creation adds no duplicate handler."""
    root = logging.getLogger()
    root.setLevel(level)
    for name, floor in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), floor))
    for handler in root.handlers:
        if getattr(handler, "_kwit", False):
            handler.setLevel(level)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler._kwit = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "ts", "name": "logger"},
        )
    )
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactDatabaseErrors())
    root.addHandler(handler)


def init_app(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):  # type: ignore[no-untyped-def]
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        return response
