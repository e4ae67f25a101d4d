"""`kwit worker`: a real RQ worker on the configured Redis, plus the periodic sweeper."""

from __future__ import annotations

import logging
import threading

import click
from flask.cli import with_appcontext

log = logging.getLogger("kwit.worker")


def register(cli: click.Group) -> None:
    cli.add_command(worker)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty (for scripts and tests).")
@click.option("--name", default=None, help="Worker name shown in RQ (default: host and pid).")
@with_appcontext
def worker(burst: bool, name: str | None) -> None:
    """Run jobs from Redis and sweep the outbox every KWIT_SWEEP_INTERVAL seconds.

    Needs KWIT_REDIS_URL. Run as many workers as you like: the outbox in the database decides
    who does what, so two workers never issue the same invoice twice.
    """
    from rq import SimpleWorker

    from service.db import runtime
    from service.worker import install_job_context, periodic_tasks

    rt = runtime()
    if rt.queue is None or rt.redis is None:
        raise click.ClickException(
            "KWIT_REDIS_URL is not set: without Redis, jobs run inline in the web process "
            "and no worker is needed."
        )
    install_job_context(rt)
    stop = threading.Event()
    ticker = threading.Thread(
        target=periodic_tasks, args=(rt, stop), name="kwit-sweeper", daemon=True
    )
    ticker.start()
    click.echo(f"Kwit worker on queue {rt.queue.name!r} ({'burst' if burst else 'long-running'})")
    # SimpleWorker runs jobs in this process: no fork per job, one DB pool per worker.
    try:
        SimpleWorker([rt.queue], connection=rt.redis, name=name).work(
            burst=burst, logging_level=rt.settings.log_level
        )
    finally:
        stop.set()
