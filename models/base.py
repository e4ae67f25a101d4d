"""Declarative base: naming convention, UTC timestamps, ULID ids and shared column mixins."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from ulid import ULID

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp that is always UTC, also on SQLite (which drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Kwit stores timezone-aware UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    """A sortable, URL-safe identifier (ULID, 26 characters)."""
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        date: sa.Date(),
        dict[str, Any]: sa.JSON(),
        list[Any]: sa.JSON(),
        enum.Enum: sa.Enum(
            enum.Enum,
            native_enum=False,
            length=24,
            values_callable=lambda members: [m.value for m in members],
        ),
    }

    def __repr__(self) -> str:
        pk = ", ".join(f"{c.key}={getattr(self, c.key)!r}" for c in self.__mapper__.primary_key)
        return f"<{type(self).__name__} {pk}>"


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Retained:
    """Every record kept under a statutory or legitimate-interest rule carries its basis and date."""

    retention_basis: Mapped[str | None] = mapped_column(sa.String(64))
    retain_until: Mapped[date | None] = mapped_column(index=True)


class Restrictable:
    """GDPR art. 18-style restriction of a record that must be kept after an erasure request."""

    restricted_at: Mapped[datetime | None]
    restriction_reason: Mapped[str | None] = mapped_column(sa.String(255))
