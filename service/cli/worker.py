"""`kwit worker`: a real RQ worker on the configured Redis, plus the periodic sweeper."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from service.worker import run_worker


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
    from service.db import runtime

    rt = runtime()
    if rt.queue is None or rt.redis is None:
        raise click.ClickException(
            "KWIT_REDIS_URL is not set: without Redis, jobs run inline in the web process "
            "and no worker is needed."
        )
    click.echo(f"Kwit worker on queue {rt.queue.name!r} ({'burst' if burst else 'long-running'})")
    run_worker(rt, burst=burst, name=name)
