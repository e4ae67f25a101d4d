"""Structured JSON logs with a request id. Bodies and secrets are never logged."""

from __future__ import annotations

import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or "-" outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr. Idempotent: repeated app creation adds no duplicate handler."""
    root = logging.getLogger()
    root.setLevel(level)
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
