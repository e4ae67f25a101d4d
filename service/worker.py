"""Wiring between Settings and the job layer: the job context and the periodic tasks."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from invoicing import jobs, outbox
from invoicing.queue import safe_enqueue, safe_enqueue_missing
from models import utcnow
from service.runtime import Runtime

log = logging.getLogger("kwit.worker")


def job_context(rt: Runtime) -> jobs.JobContext:
    """The context jobs run with, built once per runtime."""
    if rt.job_context is None:
        rt.job_context = jobs.JobContext(
            sessions=rt.sessions,
            lease=timedelta(seconds=rt.settings.job_lease_seconds),
            services=rt.job_services(),
        )
    return rt.job_context


def install_job_context(rt: Runtime) -> jobs.JobContext:
    """Install the context for RQ jobs in this (worker) process."""
    ctx = job_context(rt)
    jobs.configure(ctx)
    return ctx


def run_inline(rt: Runtime, outbox_id: str) -> str | None:
    """Without Redis, run the job in this process right after the commit that created it."""
    try:
        return jobs.run_outbox_item(outbox_id, job_context(rt))
    except Exception:
        # The row stays due; `kwit sweep` (or the next inline run) picks it up again.
        log.exception("inline job failed", extra={"outbox_id": outbox_id})
        return None


def dispatch(rt: Runtime, outbox_id: str, *, fresh: bool = False) -> None:
    """After a commit: hand the item to Redis, or run it inline when there is no Redis."""
    if rt.queue is not None:
        safe_enqueue(rt.queue, outbox_id, fresh=fresh)
    else:
        run_inline(rt, outbox_id)


def sweep_once(rt: Runtime) -> int:
    if rt.queue is not None:
        queue = rt.queue
        return outbox.sweep(rt.sessions, lambda ids: safe_enqueue_missing(queue, ids), now=utcnow())
    return outbox.sweep(
        rt.sessions,
        lambda ids: sum(1 for oid in ids if run_inline(rt, oid) is not None),
        now=utcnow(),
    )


def periodic_tasks(rt: Runtime, stop: threading.Event) -> None:
    """The worker's background loop: sweep the outbox at start, then every KWIT_SWEEP_INTERVAL.

    Sweeping at start means a restarted worker picks up what its predecessor left at once.
    """
    interval = 0.0
    while not stop.wait(interval):
        interval = rt.settings.sweep_interval
        for task in (_sweep, _paynow_sync, _daily_retention):
            try:
                task(rt)
            except Exception:
                # One failing task must not stop the others or the loop.
                log.exception("periodic task failed", extra={"task": task.__name__})


def _sweep(rt: Runtime) -> None:
    count = sweep_once(rt)
    if count:
        log.info("sweeper re-enqueued outbox items", extra={"count": count})


PAYNOW_SYNC_EVERY = 60.0  # seconds; only payments older than KWIT_PAYNOW_SYNC_AGE are polled
_last_paynow_sync = 0.0


def _paynow_sync(rt: Runtime) -> None:
    """Heal missed PayNow notifications: poll stale NEW/PENDING payments and open refunds."""
    global _last_paynow_sync
    if time.monotonic() - _last_paynow_sync < PAYNOW_SYNC_EVERY:
        return
    _last_paynow_sync = time.monotonic()
    from service.cli.paynow import sync_once

    report = sync_once(rt)
    if report is not None and report.outbox_ids:
        log.info("paynow sync healed payments", extra={"invoices": len(report.outbox_ids)})


def _daily_retention(rt: Runtime) -> None:
    """With KWIT_RETENTION_DAILY, the first worker to get there each day runs the purge."""
    if not rt.settings.retention_daily or rt.redis is None:
        return
    today = utcnow().date()
    if not rt.redis.set(f"kwit:retention-run:{today.isoformat()}", "1", nx=True, ex=3 * 86400):
        return  # another worker has it today
    from service.retention_ops import run_retention

    report = run_retention(rt, today=today, actor="worker")
    log.info("daily retention run done", extra={"report": str(report)[:500]})
    from service.idempotency import purge_expired

    with rt.sessions.begin() as session:
        purge_expired(session, now=utcnow())
