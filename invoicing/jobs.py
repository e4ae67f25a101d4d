"""RQ jobs. Module-level functions that take ids; the process installs a JobContext first.

`kwit worker` installs the context once at start-up (service/worker.py); in inline mode the web
process installs it too and calls `run_outbox_item` right after its commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from invoicing import outbox
from models import OutboxItem, utcnow

log = logging.getLogger("kwit.jobs")


class Handler(Protocol):
    """Performs a claimed outbox item; must finish, reschedule or park it, and commit."""

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


_context: JobContext | None = None
HANDLERS: dict[str, Handler] = {}


def configure(context: JobContext | None) -> None:
    global _context
    _context = context


def context() -> JobContext:
    if _context is None:
        raise RuntimeError("job context not installed: start jobs through `kwit worker`")
    return _context


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that performs outbox items of `kind`."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def run_outbox_item(outbox_id: str, ctx: JobContext | None = None) -> str:
    """Claim the outbox item and run its handler. Returns a short outcome for the RQ result.

    RQ calls it with the id only (the worker installed the context); inline mode passes `ctx`.
    """
    ctx = ctx or context()
    now = ctx.clock()
    with ctx.sessions() as session:
        item = outbox.claim(session, outbox_id, now=now, lease=ctx.lease)
        session.commit()
        if item is None:
            return "not-claimed"  # done, not due, or another worker holds the lease
        run = HANDLERS.get(item.kind)
        if run is None:
            outbox.park(session, item, now=now, error=f"no handler for {item.kind!r}")
            session.commit()
            return "no-handler"
        outcome = run(ctx, session, item, now=now)
        log.info("outbox item done", extra={"outbox_id": outbox_id, "outcome": outcome})
        return outcome
