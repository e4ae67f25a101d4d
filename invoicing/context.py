"""What a job runs with: the JobContext built by the service layer, and the invoice job's view."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from compliance.retention import RetentionEngine
from invoicing.ifirma import IFirmaClient
from invoicing.outcomes import Later
from models import Invoice, OutboxItem, utcnow
from models.blobs import BlobStore
from models.vault import Vault


class Handler(Protocol):
    """Performs a claimed outbox item; must finish, snooze, reschedule or park it, and commit."""

    def __call__(
        self, ctx: JobContext, session: Session, item: OutboxItem, *, now: datetime
    ) -> str: ...


@dataclass
class JobContext:
    """Everything a job needs, built from Settings by the service layer."""

    sessions: sessionmaker[Session]
    lease: timedelta
    services: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True)
class Services:
    """What the invoice job uses, from JobContext.services."""

    ifirma: IFirmaClient
    vault: Vault
    blobs: BlobStore
    retention: RetentionEngine
    ksef_enabled: bool = True

    @classmethod
    def of(cls, ctx: JobContext) -> Services:
        """The services, or Later when iFirma is not configured (the item waits for it)."""
        s = ctx.services
        if s.get("ifirma") is None:
            raise Later("iFirma is not configured (KWIT_IFIRMA_USER, KWIT_IFIRMA_INVOICE_KEY)")
        return cls(s["ifirma"], s["vault"], s["blobs"], s["retention"], s.get("ksef_enabled", True))

    def stored_payload(self, invoice: Invoice) -> dict[str, Any] | None:
        """The iFirma request built for this invoice, decrypted; None when none is stored."""
        if invoice.payload_encrypted is None:
            return None
        return json.loads(self.vault.decrypt_bytes(invoice.payload_encrypted), parse_float=Decimal)

    def payload_nip(self, invoice: Invoice) -> str | None:
        """The buyer's NIP, read from the stored payload (it is not kept in plain before issue)."""
        payload = self.stored_payload(invoice)
        return (payload.get("Kontrahent") or {}).get("NIP") if payload else None
