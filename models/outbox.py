"""The durable work list. Redis only carries outbox ids; this table is the truth."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped, new_id, utcnow
from models.enums import OutboxState


class OutboxItem(Timestamped, Base):
    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(sa.String(32))
    ref_id: Mapped[str] = mapped_column(sa.String(26))
    state: Mapped[OutboxState] = mapped_column(default=OutboxState.PENDING)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.UniqueConstraint("kind", "ref_id"),
        sa.Index("ix_outbox_state_due_at", "state", "due_at"),
    )
