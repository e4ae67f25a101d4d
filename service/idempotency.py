"""The Idempotency-Key request header (draft-ietf-httpapi-idempotency-key-header) for POSTs.

Policy (published in the README and the OpenAPI description):

- The header is required (400 without it). Its value is a structured-field string
  (``"8e03978e-…"``) or, leniently, a bare value of visible ASCII; 1 to 255 characters.
- Keys belong to the API key that sent them and expire 24 h after first use; an expired key is
  replaced by the next request that uses it.
- The fingerprint is the SHA-256 of method, path and the raw body. The body itself is never
  stored (it carries buyer data); only the fingerprint and the response body are.
- The first request inserts an ``in_flight`` row and commits, so the unique constraint
  (api_key_id, key) decides races: a second request while the first runs gets 409.
- A completed 2xx/3xx answer is stored and replayed byte for byte (``Idempotent-Replayed: true``)
  to a request with the same key and fingerprint; a different fingerprint gets 422.
- A 4xx or 5xx answer is not stored: the key is released. A 4xx means the request was refused
  without effect (the draft asks clients to correct such a request before retrying, and they
  may keep the key); a 5xx means "try again", and the operation resumes where it stopped.
- An ``in_flight`` row older than ``IN_FLIGHT_LEASE`` belongs to a process that died; the next
  request takes it over.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, g, make_response, request
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import IdempotencyKey, IdempotencyState, new_id, utcnow
from service.auth import current_principal
from service.db import get_session
from service.errors import ApiError

__all__ = [
    "HEADER",
    "IN_FLIGHT_LEASE",
    "MAX_KEY_LENGTH",
    "OPENAPI_PARAMETER",
    "TTL",
    "Claim",
    "IdempotencyRequest",
    "current_request",
    "fingerprint",
    "idempotent",
    "parse_key",
    "purge_expired",
]

log = logging.getLogger("kwit.idempotency")

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255  # the idempotency_keys.key column
TTL = timedelta(hours=24)
# Far longer than any request may take (PayNow calls time out well within a minute).
IN_FLIGHT_LEASE = timedelta(minutes=10)

# RFC 8941 §3.3.3 sf-string characters, and a lenient bare form (no quotes, commas, spaces).
_SF_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_BARE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")

OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": True,
    "description": "A unique key per operation, e.g. a UUID as a structured-field string "
    '("…") or bare; at most 255 characters, valid for 24 h per API key. A retry with the same '
    "key and body replays the first answer (Idempotent-Replayed: true).",
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH + 2},
}


@dataclass(frozen=True)
class IdempotencyRequest:
    """The key of the request being served, for views that derive ids from it."""

    api_key_id: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Claim:
    """Outcome of claiming a key: ``row_id`` when this request owns it, else a stored answer."""

    row_id: str | None
    status: int | None = None
    body: str | None = None


def parse_key(values: list[str]) -> str:
    """The key from the header field values; ValueError with a client-facing reason if bad."""
    if not values:
        raise ValueError(f"The {HEADER} header is required for this operation.")
    if len(values) > 1:
        raise ValueError(f"Send exactly one {HEADER} header.")
    raw = values[0].strip(" \t")
    quoted = _SF_STRING.fullmatch(raw)
    if quoted:
        key = re.sub(r"\\(.)", r"\1", quoted.group(1))
    elif _BARE.fullmatch(raw):
        key = raw
    else:
        raise ValueError(
            f'{HEADER} must be a structured-field string ("…") or a bare value of visible '
            "ASCII characters without spaces, quotes, commas or semicolons."
        )
    if not key:
        raise ValueError(f"{HEADER} must not be empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"{HEADER} must be at most {MAX_KEY_LENGTH} characters.")
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 over method, path and the raw body (hex)."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        # Length-prefixed, so no two different triples hash the same bytes.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def current_request() -> IdempotencyRequest | None:
    """The idempotency key of the request being served (inside an @idempotent view)."""
    return g.get("idempotency")


def idempotent(view: F) -> F:
    """Make a POST view idempotent. Place it below require_role and above flask-smorest's
    ``arguments``/``response``, so it sees the principal and the finished Response."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            key = parse_key(request.headers.getlist(HEADER))
        except ValueError as exc:
            raise ApiError(
                400,
                str(exc),
                title="Idempotency-Key is missing or invalid",
                reason="idempotency_key_invalid",
            ) from None
        principal = current_principal()
        ctx = IdempotencyRequest(
            api_key_id=principal.key_id,
            key=key,
            fingerprint=fingerprint(request.method, request.path, request.get_data()),
        )
        session = get_session()
        found = claim(session, ctx, now=utcnow())
        if found.row_id is None:
            return _replay(found)
        g.idempotency = ctx
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            # Whatever the view left uncommitted is discarded anyway; drop it before releasing,
            # or SQLite's write lock (BEGIN IMMEDIATE) would still be held by this session.
            session.rollback()
            try:
                release(session, found.row_id)
            except Exception:
                # Keep the view's own error; the row expires as abandoned after the lease.
                log.exception("could not release an idempotency key")
            raise
        session.rollback()
        if response.status_code < 400 and response.is_json and not response.is_streamed:
            complete(session, found.row_id, response.status_code, response.get_data(as_text=True))
        else:
            release(session, found.row_id)
        return response

    return wrapper  # type: ignore[return-value]


def claim(session: Session, ctx: IdempotencyRequest, *, now: datetime) -> Claim:
    """Insert the in-flight row (and commit), or find the answer or conflict already there."""
    for _ in range(3):
        row_id = _insert(session, ctx, now=now)
        if row_id is not None:
            session.commit()
            return Claim(row_id)
        row = session.execute(
            sa.select(
                IdempotencyKey.id,
                IdempotencyKey.fingerprint,
                IdempotencyKey.state,
                IdempotencyKey.response_status,
                IdempotencyKey.response_body,
                IdempotencyKey.created_at,
                IdempotencyKey.expires_at,
            ).where(IdempotencyKey.api_key_id == ctx.api_key_id, IdempotencyKey.key == ctx.key)
        ).one_or_none()
        if row is None:
            continue  # released between our insert and our read: try again
        abandoned = row.state is IdempotencyState.IN_FLIGHT and row.created_at <= now - (
            IN_FLIGHT_LEASE
        )
        if row.expires_at <= now or abandoned:
            # Expired, or left in flight by a process that died: replace it. Of two requests
            # doing this at once, both delete the same row id and only one insert wins.
            session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
            session.commit()
            continue
        session.commit()
        if row.fingerprint != ctx.fingerprint:
            raise ApiError(
                422,
                f"This {HEADER} was already used with a different request; use a new key for a "
                "new request.",
                title="Idempotency-Key is already used",
                reason="idempotency_key_reused",
            )
        if row.state is IdempotencyState.IN_FLIGHT or row.response_status is None:
            raise ApiError(
                409,
                f"A request with this {HEADER} is still being processed; retry shortly.",
                title="A request is outstanding for this Idempotency-Key",
                reason="idempotency_key_in_flight",
            )
        return Claim(None, row.response_status, row.response_body)
    raise ApiError(
        409, f"This {HEADER} is contended; retry shortly.", reason="idempotency_key_invalid"
    ) from None


def complete(session: Session, row_id: str, status: int, body: str) -> None:
    """Store the answer and mark the key done."""
    session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id)
        .values(state=IdempotencyState.DONE, response_status=status, response_body=body)
    )
    session.commit()


def release(session: Session, row_id: str) -> None:
    """Forget the key, so the client may retry with it."""
    session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
    session.commit()


def purge_expired(session: Session, *, now: datetime) -> int:
    """Delete expired keys (for a periodic task; expired keys are also replaced on use)."""
    result = session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    return result.rowcount or 0


def _insert(session: Session, ctx: IdempotencyRequest, *, now: datetime) -> str | None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(IdempotencyKey.__table__)
        .values(
            id=new_id(),
            api_key_id=ctx.api_key_id,
            key=ctx.key,
            fingerprint=ctx.fingerprint,
            state=IdempotencyState.IN_FLIGHT.value,
            created_at=now,
            expires_at=now + TTL,
        )
        .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
        .returning(IdempotencyKey.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def _replay(found: Claim) -> Response:
    response = Response(found.body or "", status=found.status, mimetype="application/json")
    response.headers[REPLAYED_HEADER] = "true"
    return response
