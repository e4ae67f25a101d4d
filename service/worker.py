"""The job side of a Kwit process: the job context, dispatch after commit, the periodic tasks.

`kwit worker` runs `run_worker`; the web process only calls `dispatch` after its commits.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from invoicing import jobs, outbox
from invoicing.context import JobContext
from invoicing.queue import safe_enqueue, safe_enqueue_missing
from models import utcnow
from service.idempotency import purge_expired
from service.retention_ops import run_retention
from service.runtime import Runtime
from webhooks.paynow_sync import SyncReport, sync

__all__ = [
    "dispatch",
    "install_job_context",
    "job_context",
    "paynow_sync_once",
    "periodic_tasks",
    "run_inline",
    "run_worker",
    "sweep_once",
]

log = logging.getLogger("kwit.worker")

PAYNOW_SYNC_EVERY = 60.0  # seconds; only payments older than KWIT_PAYNOW_SYNC_AGE are polled


def job_context(rt: Runtime) -> JobContext:
    """The context jobs run with, built once per runtime."""
    if rt.job_context is None:
        rt.job_context = JobContext(
            sessions=rt.sessions,
            lease=timedelta(seconds=rt.settings.job_lease_seconds),
            services=rt.job_services(),
        )
    return rt.job_context


def install_job_context(rt: Runtime) -> JobContext:
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
    """Hand every due outbox item to Redis (or run it inline); returns how many."""
    if rt.queue is not None:
        queue = rt.queue
        return outbox.sweep(rt.sessions, lambda ids: safe_enqueue_missing(queue, ids), now=utcnow())
    return outbox.sweep(
        rt.sessions,
        lambda ids: sum(1 for oid in ids if run_inline(rt, oid) is not None),
        now=utcnow(),
    )


def paynow_sync_once(rt: Runtime, *, min_age: timedelta | None = None) -> SyncReport | None:
    """One PayNow sync run: poll, commit, then dispatch the queued invoices. None without PayNow.

    For the worker's periodic loop as well as `kwit paynow sync`; PayNow errors other than auth
    errors are counted in the report, an auth error is raised.
    """
    client = rt.paynow()
    if client is None:
        return None
    age = min_age if min_age is not None else timedelta(seconds=rt.settings.paynow_sync_age)
    with rt.sessions() as session:
        report = sync(session, rt.ingest_context, client, now=utcnow(), min_age=age)
        session.commit()
    for outbox_id in report.outbox_ids:
        dispatch(rt, outbox_id)
    if report.payments_updated or report.refunds_updated or report.errors:
        log.info("paynow sync", extra={"summary": report.summary()})
    return report


def run_worker(rt: Runtime, *, burst: bool = False, name: str | None = None) -> None:
    """Run RQ jobs in this process until stopped (or, with `burst`, until the queue is empty),
    with the periodic tasks in a background thread."""
    from rq import SimpleWorker

    if rt.queue is None or rt.redis is None:
        raise RuntimeError("a worker needs KWIT_REDIS_URL")
    install_job_context(rt)
    stop = threading.Event()
    ticker = threading.Thread(
        target=periodic_tasks, args=(rt, stop), name="kwit-sweeper", daemon=True
    )
    ticker.start()
    # SimpleWorker runs jobs in this process: no fork per job, one DB pool per worker.
    try:
        SimpleWorker([rt.queue], connection=rt.redis, name=name).work(
            burst=burst, logging_level=rt.settings.log_level
        )
    finally:
        stop.set()


def periodic_tasks(rt: Runtime, stop: threading.Event) -> None:
    """The worker's background loop: sweep the outbox at start, then every KWIT_SWEEP_INTERVAL.

    Sweeping at start means a restarted worker picks up what its predecessor left at once.
    """
    Periodic(rt).run(stop)


class Periodic:
    """The periodic tasks of one worker, and what they remember between rounds."""

    def __init__(self, rt: Runtime, *, paynow_every: float = PAYNOW_SYNC_EVERY) -> None:
        self.rt = rt
        self.paynow_every = paynow_every
        self.last_paynow_sync: float | None = None  # time.monotonic() of the last run

    def run(self, stop: threading.Event) -> None:
        """Run a round at once, then one every KWIT_SWEEP_INTERVAL until `stop` is set."""
        interval = 0.0
        while not stop.wait(interval):
            interval = self.rt.settings.sweep_interval
            self.run_once()

    def run_once(self) -> None:
        """One round: sweep, PayNow sync when due, the daily retention run when due."""
        for task in (self.sweep, self.paynow_sync, self.daily_retention):
            try:
                task()
            except Exception:
                # One failing task must not stop the others or the loop.
                log.exception("periodic task failed", extra={"task": task.__name__})

    def sweep(self) -> None:
        count = sweep_once(self.rt)
        if count:
            log.info("sweeper re-enqueued outbox items", extra={"count": count})

    def paynow_sync(self) -> None:
        """Heal missed PayNow notifications: poll stale NEW/PENDING payments and open refunds."""
        now = time.monotonic()
        if self.last_paynow_sync is not None and now - self.last_paynow_sync < self.paynow_every:
            return
        self.last_paynow_sync = now
        report = paynow_sync_once(self.rt)
        if report is not None and report.outbox_ids:
            log.info("paynow sync healed payments", extra={"invoices": len(report.outbox_ids)})

    def daily_retention(self) -> None:
        _daily_retention(self.rt)


def _daily_retention(rt: Runtime) -> None:
    """With KWIT_RETENTION_DAILY, the first worker to get there each day runs the purge."""
    if not rt.settings.retention_daily or rt.redis is None:
        return
    today = utcnow().date()
    if not rt.redis.set(f"kwit:retention-run:{today.isoformat()}", "1", nx=True, ex=3 * 86400):
        return  # another worker has it today
    report = run_retention(rt, today=today, actor="worker")
    log.info("daily retention run done", extra={"report": str(report)[:500]})
    with rt.sessions.begin() as session:
        purge_expired(session, now=utcnow())
