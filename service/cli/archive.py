"""`kwit archive`: the accountants' invoice archive written to a file, with a progress bar."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from invoicing.archive import ArchiveSummary, PeriodError, archive_filename, validate_period
from service.archive_file import ArchiveWriteError, write_archive

DAY = click.DateTime(formats=["%Y-%m-%d"])


def register(cli: click.Group) -> None:
    cli.add_command(archive)


@click.command("archive")
@click.option(
    "--from", "start", required=True, type=DAY, metavar="YYYY-MM-DD", help="First issue date."
)
@click.option("--to", "end", required=True, type=DAY, metavar="YYYY-MM-DD", help="Last issue date.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="ZIP file to write.  [default: kwit-invoices-FROM-TO.zip]",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@with_appcontext
def archive(start: datetime, end: datetime, output: Path | None, force: bool) -> None:
    """Write the invoices issued from FROM to TO (both included) to a ZIP file.

    The same archive as GET /v1/archives/invoices: every issued invoice and correction with
    its PDF, manifest.csv (for Excel), manifest.json, README.txt and SHA256SUMS. One archive
    holds at most 366 days. The ZIP is written to FILE.part and renamed when complete, so a
    file under the final name is always whole. Each run is recorded in the audit log.

    \b
    Example:
      kwit archive --from 2026-11-01 --to 2026-11-30 -o faktury-2026-11.zip
      unzip -t faktury-2026-11.zip
    """
    first, last = start.date(), end.date()
    try:
        validate_period(first, last)
    except PeriodError as exc:
        raise click.BadParameter(f"{exc} {exc.hint or ''}".strip(), param_hint=f"'--{exc.param}'")
    output = output or Path(archive_filename(first, last))
    if output.exists() and not force:
        raise click.ClickException(f"{output} already exists; use --force to replace it.")
    from service.db import runtime

    try:
        summary = write_archive(runtime(), first, last, output, progress=_progress_bar)
    except ArchiveWriteError as exc:
        raise click.ClickException(str(exc)) from exc.__cause__
    _report(summary, output)


def _progress_bar(total: int) -> Any:
    return click.progressbar(length=total, label="Archiving invoices", file=sys.stderr)


def _report(summary: ArchiveSummary, output: Path) -> None:
    click.echo(
        f"Wrote {output}: {summary.invoices} invoices ({summary.corrections} corrections), "
        f"{summary.bytes:,} bytes ({summary.bytes / 1e6:.1f} MB)."
    )
    click.echo(f"SHA-256 of the archive: {summary.sha256}")
    if summary.missing or summary.mismatched:
        click.secho(
            f"Warning: {len(summary.missing)} missing PDF(s), {len(summary.mismatched)} PDF(s) "
            "not matching their recorded checksum; README.txt in the archive lists them.",
            fg="yellow",
            err=True,
        )
    folder = output.name.removesuffix(".zip")
    click.echo(
        f"Verify: unzip -t {output} && unzip -q {output} -d {folder} "
        f"&& (cd {folder} && sha256sum -c SHA256SUMS)"
    )
