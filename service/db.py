"""One SQLAlchemy session per request, opened lazily and closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from service.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["kwit"]


def get_session() -> Session:
    """The request's session. Views commit explicitly; anything uncommitted is rolled back."""
    if "db_session" not in g:
        g.db_session = runtime().sessions()
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_session)
