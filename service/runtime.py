"""The objects one Kwit process shares: engine, sessions, vault, Redis queue. Built from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from compliance.retention import PolicyError, RetentionEngine, load_policy
from invoicing.context import JobContext
from invoicing.ifirma import IFirmaClient
from invoicing.queue import redis_client
from models.blobs import LocalBlobStore
from models.session import make_engine, make_session_factory
from models.vault import Vault
from service.config import Settings
from service.http import http_session
from webhooks.ingest import IngestContext
from webhooks.recent import RecentKeys


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    sessions: sessionmaker[Session]
    vault: Vault
    redis: Redis | None
    queue: Queue | None
    blobs: LocalBlobStore
    retention: RetentionEngine
    ingest_context: IngestContext
    job_context: JobContext | None = None
    recent_events: RecentKeys = field(default_factory=RecentKeys)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url)
        redis = None
        queue = None
        if settings.redis_url:
            redis = redis_client(settings.redis_url)
            queue = Queue(settings.queue_name, connection=redis)
        vault = Vault(settings.encryption_keys)
        retention = retention_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            vault=vault,
            redis=redis,
            queue=queue,
            blobs=LocalBlobStore(settings.blob_dir),
            retention=retention,
            ingest_context=IngestContext(
                vault=vault,
                retention=retention,
                default_vat_rate=settings.default_vat_rate,
                stripe_livemode=settings.stripe_livemode,
            ),
        )

    def job_services(self) -> dict[str, object]:
        """Clients and stores the jobs use (see invoicing.context.Services)."""
        return {
            "ifirma": ifirma_client(self.settings),
            "vault": self.vault,
            "blobs": self.blobs,
            "retention": self.retention,
            "ksef_enabled": self.settings.ksef_enabled,
        }

    def retention_tag(self, kind: str, at: datetime) -> tuple[str, date]:
        """(basis code, retain_until) for a log-like record (audit_log, login_attempt) at `at`."""
        rule = self.retention.audit_log if kind == "audit_log" else self.retention.login_attempt
        result = rule(at=at)
        return result.code, result.until

    def close(self) -> None:
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


def retention_engine(settings: Settings) -> RetentionEngine:
    """The configured retention rules; a policy file may only lengthen statutory periods."""
    from service.config import ConfigError

    policy = None
    if settings.retention_policy_file:
        try:
            policy = load_policy(settings.retention_policy_file, preset=settings.retention_profile)
        except (PolicyError, OSError) as exc:
            raise ConfigError("KWIT_RETENTION_POLICY_FILE", str(exc)) from None
    return RetentionEngine(
        settings.retention_profile,
        income_tax_overlay=settings.income_tax_overlay,
        policy=policy,
    )


def ifirma_client(settings: Settings) -> IFirmaClient | None:
    """An iFirma client with its own HTTP session, or None when iFirma is not configured."""
    if not (settings.ifirma_user and settings.ifirma_invoice_key):
        return None
    keys = {"faktura": settings.ifirma_invoice_key}
    if settings.ifirma_abonent_key:
        keys["abonent"] = settings.ifirma_abonent_key
    return IFirmaClient(
        http_session(settings.ifirma_base_url),
        user=settings.ifirma_user,
        keys=keys,
        base_url=settings.ifirma_base_url,
        timeout=(5.0, settings.ifirma_timeout),
    )
