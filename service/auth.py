"""API keys (`kwit_<prefix>_<secret>`, only a hash stored), roles, and the audit trail."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import g, has_request_context, request
from sqlalchemy.orm import Session

from models import ApiKey, AuditEntry, LoginAttempt, Role, utcnow
from service import metrics
from service.db import runtime
from service.errors import ApiError

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


def authenticate(session: Session, header: str | None) -> Principal:
    """Resolve the Authorization header to a principal, or raise a 401 ApiError."""
    if not header:
        _reject(session, "missing", None)
    scheme, _, token = (header or "").partition(" ")
    match = _TOKEN.match(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        _reject(session, "malformed", None)
    prefix, secret = match.group(1), match.group(2)  # type: ignore[union-attr]
    key = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.secret_sha256, hash_secret(secret)):
        _reject(session, "invalid", prefix)
    if key.revoked_at is not None:  # type: ignore[union-attr]
        _reject(session, "revoked", prefix)
    return Principal(key_id=key.id, name=key.name, role=key.role, prefix=prefix)  # type: ignore[union-attr]


def _reject(session: Session, reason: str, prefix: str | None) -> None:
    metrics.AUTH_FAILURES.labels(reason=reason).inc()
    # The prefix identifies the key without revealing it; the secret is never logged.
    log.warning("authentication failed", extra={"reason": reason, "key_prefix": prefix})
    _record_attempt(session, reason, prefix)
    raise ApiError(
        401,
        "A valid API key is required: Authorization: Bearer kwit_<prefix>_<secret>.",
        title="Unauthorized",
        reason=reason,
    )


def _record_attempt(session: Session, reason: str, prefix: str | None) -> None:
    at = utcnow()
    basis, until = runtime().retention_tag("login_attempt", at)
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
) -> None:
    """Add one audit_log row and commit it at once, so it survives a view that fails later."""
    at = utcnow()
    basis, until = runtime().retention_tag("audit_log", at)
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object=obj,
            at=at,
            remote_addr=remote_addr if remote_addr is not None else _remote_addr(),
            details=details,
            retention_basis=basis,
            retain_until=until,
        )
    )
    session.commit()


def _remote_addr() -> str | None:
    return request.remote_addr if has_request_context() else None


def require_role(*roles: Role) -> Callable[[F], F]:
    """Allow only these roles (admin is always allowed); audit accountant and admin requests."""
    allowed = frozenset(roles) | {Role.ADMIN}

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from service.db import get_session

            session = get_session()
            principal = authenticate(session, request.headers.get("Authorization"))
            g.principal = principal
            if principal.role not in allowed:
                metrics.AUTH_FAILURES.labels(reason="forbidden").inc()
                log.warning(
                    "forbidden",
                    extra={"key_prefix": principal.prefix, "role": principal.role.value},
                )
                raise ApiError(
                    403,
                    f"The {principal.role.value} role may not use this endpoint.",
                    title="Forbidden",
                )
            if principal.role in AUDITED_ROLES:
                audit(
                    session, principal.actor, f"{request.method} {request.endpoint}", request.path
                )
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def current_principal() -> Principal:
    return g.principal
