"""The objects one Kwit process shares: engine, sessions, vault, Redis queue, provider clients."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

import requests
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
from service.providers import ifirma_client, paynow_client
from webhooks.ingest import IngestContext
from webhooks.paynow_client import PaynowClient
from webhooks.recent import RecentKeys

C = TypeVar("C")


class LazyClient(Generic[C]):
    """A provider client with its own HTTP session, built on first use (thread-safe).

    `build` gets the session and returns the client, or None when the provider is not
    configured (remembered too). `close()` releases it; the next use builds a new one.
    """

    def __init__(
        self,
        base_url: str,
        build: Callable[[requests.Session], C | None],
        release: Callable[[C], None] | None = None,
    ) -> None:
        self._base_url = base_url
        self._build = build
        self._release = release
        self._lock = threading.Lock()
        self._built = False
        self._client: C | None = None
        self._http: requests.Session | None = None

    def get(self) -> C | None:
        with self._lock:
            if not self._built:
                http = http_session(self._base_url)
                self._client = self._build(http)
                if self._client is None:
                    http.close()
                else:
                    self._http = http
                self._built = True
            return self._client

    def close(self) -> None:
        with self._lock:
            client, http = self._client, self._http
            self._client, self._http, self._built = None, None, False
        if client is not None and self._release is not None:
            self._release(client)
        if http is not None:
            http.close()


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
    _ifirma: LazyClient[IFirmaClient] = field(init=False, repr=False)
    _paynow: LazyClient[PaynowClient] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self._ifirma = LazyClient(
            settings.ifirma_base_url, lambda http: ifirma_client(settings, http=http)
        )
        self._paynow = LazyClient(
            settings.paynow_base_url,
            lambda http: paynow_client(settings, http=http),
            release=PaynowClient.close,
        )

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url, timeouts=settings.db_timeouts)
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

    def ifirma(self) -> IFirmaClient | None:
        """This process's iFirma client, built on first use; None when iFirma is not set up."""
        return self._ifirma.get()

    def paynow(self) -> PaynowClient | None:
        """This process's PayNow client, built on first use; None when PayNow is not set up."""
        return self._paynow.get()

    def job_services(self) -> dict[str, object]:
        """Clients and stores the jobs use (see invoicing.context.Services)."""
        return {
            "ifirma": self.ifirma(),
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
        """Release pools and clients; safe to call twice (a later use reconnects)."""
        self.job_context = None  # it holds the iFirma client closed below
        self._ifirma.close()
        self._paynow.close()
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
