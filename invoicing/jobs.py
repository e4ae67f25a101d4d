"""RQ jobs: module-level functions that take ids, and the table of what each outbox kind runs.

RQ enqueues `run_outbox_item` by its path (invoicing/queue.py, JOB_FUNCTION), so it stays here.
`kwit worker` installs the context once at start-up (service/worker.py); in inline mode the web
process passes it to `run_outbox_item` right after its commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from invoicing import outbox
from invoicing.context import Handler, JobContext
from invoicing.pipeline import issue_invoice
from models import OutboxKind

__all__ = ["HANDLERS", "JobContext", "configure", "context", "run_outbox_item"]

log = logging.getLogger("kwit.jobs")

# What each kind of outbox item runs: the one place to look, and to add a kind.
HANDLERS: Mapping[str, Handler] = {
    OutboxKind.ISSUE_INVOICE: issue_invoice,
}

_context: JobContext | None = None


def configure(context: JobContext | None) -> None:
    """Install (or, with None, remove) the context RQ jobs in this process run with."""
    global _context
    _context = context


def context() -> JobContext:
    """The installed context; RQ jobs only get an id."""
    if _context is None:
        raise RuntimeError("job context not installed: start jobs through `kwit worker`")
    return _context


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
