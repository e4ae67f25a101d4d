"""`kwit paynow sync`: heal missed PayNow notifications and follow refunds by polling."""

from __future__ import annotations

import logging
from datetime import timedelta

import click
from flask.cli import with_appcontext

from models import utcnow
from service.providers import paynow_for
from service.runtime import Runtime
from service.worker import dispatch
from webhooks.paynow_client import PaynowError
from webhooks.paynow_sync import SyncReport, sync

__all__ = ["register", "sync_once"]

log = logging.getLogger("kwit.paynow_sync")


def register(cli: click.Group) -> None:
    cli.add_command(paynow_group)


def sync_once(rt: Runtime, *, min_age: timedelta | None = None) -> SyncReport | None:
    """One sync run: poll, commit, then dispatch the queued invoices. None without PayNow.

    For the worker's periodic loop as well as the CLI; PayNow errors other than auth errors
    are counted in the report, an auth error is raised.
    """
    client = paynow_for(rt)
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


@click.group("paynow")
def paynow_group() -> None:
    """PayNow (mBank) housekeeping."""


@paynow_group.command("sync")
@click.option(
    "--min-age",
    type=click.IntRange(min=0),
    default=None,
    help="Only poll payments and refunds untouched for this many seconds "
    "[default: KWIT_PAYNOW_SYNC_AGE].",
)
@with_appcontext
def sync_command(min_age: int | None) -> None:
    """Poll PayNow for open payments and refunds; apply what notifications missed.

    Payments still NEW/PENDING in Kwit are read from PayNow and go through the same state
    machine as notifications (a CONFIRMED payment queues its invoice); NEW/PENDING refunds are
    followed, and a SUCCESSFUL one queues its correction invoice. Run it from cron, or let
    `kwit worker` do it.
    """
    from service.db import runtime

    rt = runtime()
    try:
        report = sync_once(rt, min_age=None if min_age is None else timedelta(seconds=min_age))
    except PaynowError as exc:
        raise click.ClickException(f"PayNow refused the credentials: {exc}") from None
    if report is None:
        raise click.ClickException(
            "PayNow is not configured: set KWIT_PAYNOW_API_KEY and KWIT_PAYNOW_SIGNATURE_KEY."
        )
    click.echo(f"PayNow sync: {report.summary()}")
