"""API keys, idempotency records, the audit log, login attempts, legal holds, customer stubs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Retained, new_id, utcnow
from models.enums import HoldScope, IdempotencyState, Role


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[Role]
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    api_key_id: Mapped[str] = mapped_column(sa.ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[IdempotencyState] = mapped_column(default=IdempotencyState.IN_FLIGHT)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (sa.UniqueConstraint("api_key_id", "key"),)


class AuditEntry(Retained, Base):
    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    actor: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(64))
    object: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    remote_addr: Mapped[str | None] = mapped_column(sa.String(45))
    details: Mapped[dict[str, Any] | None]


class LoginAttempt(Retained, Base):
    """A failed API-key authentication: the key prefix (never the secret) and the address."""

    __tablename__ = "login_attempts"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    key_prefix: Mapped[str | None] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(32))
    remote_addr: Mapped[str | None] = mapped_column(sa.String(45))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LegalHold(Base):
    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    scope: Mapped[HoldScope]
    scope_value: Mapped[str | None] = mapped_column(sa.String(100))
    reason: Mapped[str] = mapped_column(sa.Text)
    reference: Mapped[str | None] = mapped_column(sa.String(255))
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(sa.String(100))


class CustomerStub(Retained, Base):
    """What remains of a customer after an erasure request: a pseudonymous, restricted stub."""

    __tablename__ = "customer_stubs"

    customer_ref: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    buyer_type: Mapped[str | None] = mapped_column(sa.String(8))
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    restriction_reason: Mapped[str | None] = mapped_column(sa.String(255))
