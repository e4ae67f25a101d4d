"""`kwit retention run|table`: thin wrappers over the compliance purge and rule table.

What is kept and why is explained in docs/retention-law.md; `table` writes docs/retention.md.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import click
from flask.cli import with_appcontext

from compliance.purge_report import format_report
from compliance.retention_doc import render_retention_doc
from service.retention_ops import run_retention

__all__ = ["register", "retention_group", "run_retention"]


def register(cli: click.Group) -> None:
    """Add the `retention` command group to the `kwit` CLI."""
    cli.add_command(retention_group)


@click.group("retention")
def retention_group() -> None:
    """Retention periods: purge expired records, print the rule table."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Purge as if today were this date (YYYY-MM-DD). Default: today (UTC).",
)
@with_appcontext
def run(dry_run: bool, as_of: datetime | None) -> None:
    """Delete or anonymise records whose retain_until has passed; legal holds are skipped.

    Writes one audit_log entry with the counts. Running it again deletes nothing more.
    """
    from models import utcnow
    from service.db import runtime

    today: date = as_of.date() if as_of else utcnow().date()
    report = run_retention(
        runtime(),
        today=today,
        dry_run=dry_run,
        progress=lambda total: click.progressbar(length=total, label="Purging", file=sys.stderr),
    )
    title = "Dry run, nothing changed" if dry_run else "Retention run"
    click.echo(f"{title} (as of {today.isoformat()}; purges rows with retain_until < as-of):")
    click.echo(format_report(report))


@retention_group.command("table")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file (e.g. docs/retention.md) instead of standard output.",
)
@with_appcontext
def table(output: Path | None) -> None:
    """Print the effective retention rules for the configured preset and policy (Markdown)."""
    from service.db import runtime

    text = render_retention_doc(runtime().retention)
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {output}", err=True)
