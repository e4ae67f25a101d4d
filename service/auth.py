"""API keys (`kwit_<prefix>_<secret>`, only a hash stored), roles, and the audit trail."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, g, has_request_context, request
from redis import Redis
from sqlalchemy.orm import Session

from models import ApiKey, AuditEntry, LoginAttempt, Role, utcnow
from service import metrics
from service.config import Settings
from service.db import runtime
from service.errors import ApiError
from service.throttle import FailureThrottle

log = logging.getLogger("kwit.auth")

F = TypeVar("F", bound=Callable[..., Any])

_TOKEN = re.compile(r"^kwit_([a-z0-9]{8})_([A-Za-z0-9_-]{20,})$")
AUDITED_ROLES = frozenset({Role.ACCOUNTANT, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    prefix: str

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.prefix})"


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, name: str, role: Role) -> CreatedKey:
    """Create an API key; the caller shows `token` once."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, prefix=prefix, secret_sha256=hash_secret(secret))
    session.add(key)
    session.flush()
    return CreatedKey(key=key, token=f"kwit_{prefix}_{secret}")


def revoke_key(session: Session, prefix_or_name: str, *, now: datetime) -> int:
    """Revoke keys by prefix or name; return how many were revoked."""
    result = session.execute(
        sa.update(ApiKey)
        .where(
            sa.or_(ApiKey.prefix == prefix_or_name, ApiKey.name == prefix_or_name),
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return result.rowcount or 0


class AuthFailure(Exception):
    """The Authorization header does not name a usable key; `reason` says why."""

    def __init__(self, reason: str, prefix: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prefix = prefix


def authenticate(session: Session, header: str | None) -> Principal:
    """Resolve the Authorization header to a principal, or raise AuthFailure."""
    if not header:
        raise AuthFailure("missing")
    scheme, _, token = header.partition(" ")
    match = _TOKEN.match(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        raise AuthFailure("malformed")
    prefix, secret = match.group(1), match.group(2)
    key = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.secret_sha256, hash_secret(secret)):
        raise AuthFailure("invalid", prefix)
    if key.revoked_at is not None:
        raise AuthFailure("revoked", prefix)
    return Principal(key_id=key.id, name=key.name, role=key.role, prefix=prefix)


def authenticate_request(session: Session, *, now: float | None = None) -> Principal:
    """The request's principal, or a 401 (429 when throttled) ApiError.

    Failures are counted per address and per key prefix (service/throttle.py). An address over
    its limit is refused before anything else runs; a prefix over its limit answers 429 to bad
    secrets only, so that guessing at a key cannot lock its real holder out. Only the failures
    up to the limit, and the one that trips it, are written to login_attempts.
    """
    at = time.time() if now is None else now
    throttle = _throttle()
    if throttle.over_limit(f"addr:{request.remote_addr or '-'}", now=at):
        _throttled(throttle, at, record=None)
    try:
        return authenticate(session, request.headers.get("Authorization"))
    except AuthFailure as failure:
        _reject(session, failure.reason, failure.prefix, at)


def _reject(session: Session, reason: str, prefix: str | None, at: float) -> NoReturn:
    metrics.AUTH_FAILURES.labels(reason=reason).inc()
    # The prefix identifies the key without revealing it; the secret is never logged.
    log.warning("authentication failed", extra={"reason": reason, "key_prefix": prefix})
    throttle = _throttle()
    failures = throttle.fail(f"addr:{request.remote_addr or '-'}", now=at)
    if prefix is not None:
        failures = max(failures, throttle.fail(f"key:{prefix}", now=at))
    if failures > throttle.limit:
        # One row for the failure that trips the limit, none after it: a flood of guesses
        # must not turn into a flood of rows.
        record = (session, prefix) if failures == throttle.limit + 1 else None
        _throttled(throttle, at, record=record)
    _record_attempt(session, reason, prefix)
    raise ApiError(
        401,
        "A valid API key is required: Authorization: Bearer kwit_<prefix>_<secret>.",
        title="Unauthorized",
        reason=reason,
    )


def _throttled(
    throttle: FailureThrottle, at: float, *, record: tuple[Session, str | None] | None
) -> NoReturn:
    metrics.AUTH_FAILURES.labels(reason="throttled").inc()
    if record is not None:
        log.warning("authentication throttled", extra={"key_prefix": record[1]})
        _record_attempt(record[0], "throttled", record[1])
    wait = throttle.retry_after(at)
    raise ApiError(
        429,
        f"Too many failed authentications; retry in {wait} s.",
        title="Too Many Requests",
        reason="throttled",
        headers={"Retry-After": str(wait)},
    )


def _throttle() -> FailureThrottle:
    return current_app.extensions["kwit_auth_throttle"]


def _record_attempt(session: Session, reason: str, prefix: str | None) -> None:
    """Write the login_attempts row in a transaction of its own: the request fails next."""
    at = utcnow()
    basis, until = runtime().retention_tag("login_attempt", at)
    session.rollback()
    session.add(
        LoginAttempt(
            key_prefix=prefix,
            reason=reason,
            remote_addr=request.remote_addr,
            at=at,
            retention_basis=basis,
            retain_until=until,
        )
    )
    session.commit()


def audit(
    session: Session,
    actor: str,
    action: str,
    obj: str | None,
    *,
    details: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> AuditEntry:
    """Add one audit_log row to the session; it is committed with the caller's outcome."""
    at = utcnow()
    basis, until = runtime().retention_tag("audit_log", at)
    entry = AuditEntry(
        actor=actor,
        action=action,
        object=obj,
        at=at,
        remote_addr=remote_addr if remote_addr is not None else _remote_addr(),
        details=details,
        retention_basis=basis,
        retain_until=until,
    )
    session.add(entry)
    return entry


def _remote_addr() -> str | None:
    return request.remote_addr if has_request_context() else None


def require_role(*roles: Role) -> Callable[[F], F]:
    """Allow only these roles (admin is always allowed); audit accountant and admin requests.

    The key itself is checked before the view's arguments are parsed (see `init_app`), so
    unauthenticated input is never validated, answered field by field, or counted as anything
    but a failed authentication.
    """
    allowed = frozenset(roles) | {Role.ADMIN}

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from service.db import get_session

            session = get_session()
            principal = g.get("principal") or authenticate_request(session)
            g.principal = principal
            if principal.role not in allowed:
                _forbid(session, principal)
            if principal.role not in AUDITED_ROLES:
                return view(*args, **kwargs)
            details = {"query": request.args.to_dict()} if request.args else None
            audit(
                session,
                principal.actor,
                f"{request.method} {request.endpoint}",
                request.path,
                details=details,
            )
            # The access row is committed before the view runs, in a transaction of its own:
            # it stands whatever the view does, and the view's own work gets its own commit.
            session.commit()
            return view(*args, **kwargs)

        wrapper._kwit_roles = allowed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def _forbid(session: Session, principal: Principal) -> NoReturn:
    metrics.AUTH_FAILURES.labels(reason="forbidden").inc()
    log.warning("forbidden", extra={"key_prefix": principal.prefix, "role": principal.role.value})
    audit(
        session,
        principal.actor,
        f"forbidden {request.method} {request.endpoint}",
        request.path,
        details={"role": principal.role.value},
    )
    session.commit()
    raise ApiError(
        403, f"The {principal.role.value} role may not use this endpoint.", title="Forbidden"
    )


def init_app(app: Flask, settings: Settings, redis: Redis | None) -> None:
    """Check API keys before any view (or its argument parsing) runs; throttle failures."""
    app.extensions["kwit_auth_throttle"] = FailureThrottle(
        f"{settings.queue_name}:auth",  # Kwit instances sharing a Redis count apart
        limit=settings.auth_failure_limit,
        window=settings.auth_failure_window,
        redis=redis,
    )

    @app.before_request
    def _authenticate_first() -> None:
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "_kwit_roles", None) is None:
            return  # not an API-key endpoint (health, webhooks, docs, or no such route)
        from service.db import get_session

        g.principal = authenticate_request(get_session())


def current_principal() -> Principal:
    return g.principal
