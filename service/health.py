"""Liveness, readiness."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from service.db import runtime
from service.errors import problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up. Touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the database answers, and Redis too when it is configured."""
    rt = runtime()
    checks: dict[str, str] = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    if rt.redis is not None:
        try:
            rt.redis.ping()
            checks["redis"] = "ok"
        except RedisError as exc:
            checks["redis"] = f"unavailable ({type(exc).__name__})"
    else:
        checks["redis"] = "not configured (jobs run inline)"
    failing = [name for name, state in checks.items() if state.startswith("unavailable")]
    if failing:
        return problem(503, f"Not ready: {', '.join(failing)} unavailable.", checks=checks)
    return jsonify(status="ready", checks=checks)
