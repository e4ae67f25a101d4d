"""The objects one Kwit process shares: engine, sessions, vault, Redis queue. Built from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from models.session import make_engine, make_session_factory
from models.vault import Vault
from service.config import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    sessions: sessionmaker[Session]
    vault: Vault
    redis: Redis | None
    queue: Queue | None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url)
        redis = None
        queue = None
        if settings.redis_url:
            # Short timeouts: a webhook must never hang on Redis; the outbox covers a miss.
            redis = Redis.from_url(
                settings.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0
            )
            queue = Queue(settings.queue_name, connection=redis)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            vault=Vault(settings.encryption_keys),
            redis=redis,
            queue=queue,
        )

    def job_services(self) -> dict[str, object]:
        """Clients and stores the jobs use; filled in as the pipeline grows."""
        return {"vault": self.vault}

    def retention_tag(self, kind: str, at: datetime) -> tuple[str, date] | None:
        """(basis code, retain_until) for a log-like record written at `at`."""
        return None

    def close(self) -> None:
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()
