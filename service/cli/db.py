"""`kwit db upgrade`: create or migrate the schema."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from models.migrate import current_revision, upgrade


def register(cli: click.Group) -> None:
    cli.add_command(db_group)


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema. Safe to run again: an up-to-date schema is left alone."""
    from service.db import runtime

    rt = runtime()
    before = current_revision(rt.engine)
    upgrade(rt.settings.database_url, revision)
    after = current_revision(rt.engine)
    if before == after:
        click.echo(f"Schema already at revision {after}; nothing to do.")
    else:
        click.echo(f"Schema migrated from {before or 'empty'} to {after}.")
