"""Glue between the `Runtime` and the compliance purge, for `kwit retention run` and the worker.

The purge itself (plan, execute and its one audit entry, in one transaction) is
``compliance.purge.run_purge``; this module only hands it the runtime's session factory,
retention engine and blob store, and the clock.
"""

from __future__ import annotations

from datetime import date, datetime

from compliance.purge import Progress, run_purge
from compliance.purge_report import PurgeReport
from models import utcnow
from service.runtime import Runtime

__all__ = ["run_retention"]


def run_retention(
    rt: Runtime,
    *,
    today: date,
    dry_run: bool = False,
    actor: str = "cli",
    now: datetime | None = None,
    progress: Progress | None = None,
) -> PurgeReport:
    """Purge what expired before ``today`` (or only count it) and write ONE audit entry.

    ``now`` (default: the current UTC time) stamps the audit entry. ``progress(total)`` may
    return a context manager whose object has ``update(n)`` (a click progress bar).
    """
    return run_purge(
        rt.sessions,
        rt.retention,
        rt.blobs,
        today=today,
        now=now or utcnow(),
        dry_run=dry_run,
        actor=actor,
        progress=progress,
    )
