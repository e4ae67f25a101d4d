"""RFC 9457 problem+json for every error. No stack trace ever reaches a client."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from models.db_errors import describe

log = logging.getLogger("kwit.errors")

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error a view raises on purpose: status, short title, detail and optional extras."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = headers or {}
        self.extra = extra


def problem(
    status: int, detail: str | None = None, *, title: str | None = None, **extra: Any
) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _title(status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = g.get("request_id") if g else None
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    return response


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    extra: dict[str, Any] = {}
    # flask-smorest/webargs attach field errors to `exc.data["messages"]`.
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and "messages" in data:
        extra["errors"] = _flatten_messages(data["messages"])
        detail = "The request is invalid: " + ", ".join(extra["errors"].keys())
    else:
        detail = exc.description if status < 500 else None
    response = problem(status, detail, **extra)
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def _flatten_messages(messages: Any) -> dict[str, Any]:
    """webargs nests errors by location ("json", "query"); clients want field → messages."""
    if isinstance(messages, dict) and set(messages) <= {
        "json",
        "query",
        "headers",
        "form",
        "files",
    }:
        flat: dict[str, Any] = {}
        for location_errors in messages.values():
            if isinstance(location_errors, dict):
                flat.update(location_errors)
        return flat
    return messages if isinstance(messages, dict) else {"_schema": messages}


def init_app(app: Flask) -> None:
    """Register the handlers. Call after flask-smorest's Api so these replace its handlers."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        response = problem(exc.status, exc.detail, title=exc.title, **exc.extra)
        response.headers.update(exc.headers)
        return response

    app.register_error_handler(HTTPException, _http_exception)

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        log.error("database unavailable", extra=describe(exc))
        return problem(503, "The database is unavailable; retry later.")

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            log.error("database connection lost")
            return problem(503, "The database is unavailable; retry later.")
        # Only the error's safe description: its message quotes the failing row.
        log.error("database error", extra=describe(exc))
        return problem(500, "Internal error; it has been logged.")

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return _http_exception(exc)
        log.exception("unhandled error", extra={"error": type(exc).__name__})
        return _http_exception(InternalServerError())
