"""`kwit paynow sync`: heal missed PayNow notifications and follow refunds by polling."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext

from service.worker import paynow_sync_once
from webhooks.paynow_client import PaynowError


def register(cli: click.Group) -> None:
    cli.add_command(paynow_group)


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

    age = None if min_age is None else timedelta(seconds=min_age)
    try:
        report = paynow_sync_once(runtime(), min_age=age)
    except PaynowError as exc:
        raise click.ClickException(f"PayNow refused the credentials: {exc}") from None
    if report is None:
        raise click.ClickException(
            "PayNow is not configured: set KWIT_PAYNOW_API_KEY and KWIT_PAYNOW_SIGNATURE_KEY."
        )
    click.echo(f"PayNow sync: {report.summary()}")
