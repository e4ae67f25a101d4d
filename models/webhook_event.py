"""Webhook deliveries: the dedupe record. The body itself is never stored, only its hash."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Restrictable, Retained, new_id, utcnow
from models.enums import EventOutcome


class WebhookEvent(Retained, Restrictable, Base):
    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(sa.String(16))
    event_key: Mapped[str] = mapped_column(sa.String(255))
    event_type: Mapped[str] = mapped_column(sa.String(64))
    provider_payment_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    body_sha256: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[EventOutcome]
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("provider", "event_key"),)
