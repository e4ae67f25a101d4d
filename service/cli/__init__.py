"""The `kwit` command line (Click, through Flask's CLI)."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from models import ApiKey, Role, utcnow
from service.config import ConfigError


def _load_app() -> Flask:
    from service.app import create_app

    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    # A CLI command runs in one app context; close the pools when it ends.
    app.teardown_appcontext(lambda _exc: app.extensions["kwit"].close())
    return app


@click.group(cls=FlaskGroup, create_app=_load_app, add_version_option=False)
def cli() -> None:
    """Kwit: payment webhooks in, VAT invoices out.

    Configuration comes from KWIT_* environment variables (see README). With none set, Kwit
    uses a local SQLite file and runs jobs inline.
    """


def main() -> None:
    cli(prog_name="kwit")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@with_appcontext
def serve(host: str, port: int) -> None:
    """Run the development server. In production use gunicorn: `gunicorn -w 4 wsgi:app`."""
    from flask import current_app

    click.echo(f"Kwit listening on http://{host}:{port} (development server)")
    current_app.run(host=host, port=port, threaded=True, use_reloader=False)


@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema. Safe to run again: an up-to-date schema is left alone."""
    from models.migrate import current_revision, upgrade
    from service.db import runtime

    rt = runtime()
    before = current_revision(rt.engine)
    upgrade(rt.settings.database_url, revision)
    after = current_revision(rt.engine)
    if before == after:
        click.echo(f"Schema already at revision {after}; nothing to do.")
    else:
        click.echo(f"Schema migrated from {before or 'empty'} to {after}.")


@cli.group("keys")
def keys_group() -> None:
    """Manage API keys (backend, accountant, admin)."""


@keys_group.command("create")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="backend: orders; accountant: invoices and archives; admin: everything.",
)
@click.argument("name")
@with_appcontext
def keys_create(role: str, name: str) -> None:
    """Create an API key called NAME and print it once. Only its hash is stored."""
    from service.auth import create_key
    from service.db import runtime

    with runtime().sessions.begin() as session:
        created = create_key(session, name=name, role=Role(role))
        prefix = created.key.prefix
    click.echo(created.token)
    click.echo(
        f"Created {role} key {name!r} (prefix {prefix}). Store it now: it is not shown again.",
        err=True,
    )


@keys_group.command("list")
@with_appcontext
def keys_list() -> None:
    """List API keys: prefix, role, name, created and revoked dates. Secrets are never shown."""
    import sqlalchemy as sa

    from service.db import runtime

    with runtime().sessions() as session:
        keys = session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)).all()
    if not keys:
        click.echo("No API keys. Create one with: kwit keys create --role admin NAME")
        return
    click.echo(f"{'PREFIX':<10} {'ROLE':<11} {'CREATED':<20} {'REVOKED':<20} NAME")
    for key in keys:
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-"
        created = key.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{key.prefix:<10} {key.role.value:<11} {created:<20} {revoked:<20} {key.name}")


@keys_group.command("revoke")
@click.argument("prefix_or_name")
@with_appcontext
def keys_revoke(prefix_or_name: str) -> None:
    """Revoke the key with this prefix (or every active key with this name)."""
    from service.auth import revoke_key
    from service.db import runtime

    with runtime().sessions.begin() as session:
        count = revoke_key(session, prefix_or_name, now=utcnow())
    if count == 0:
        raise click.ClickException(f"no active key with prefix or name {prefix_or_name!r}")
    click.echo(f"Revoked {count} key(s).")


@keys_group.command("fernet")
def keys_fernet() -> None:
    """Print a new Fernet key for KWIT_ENCRYPTION_KEYS (put it first; keep old keys after it)."""
    from models.vault import Vault

    click.echo(Vault.generate_key())


def _register_more() -> None:
    """Commands that live next to the thing they operate on."""
    from service.cli import archive, demo, emulate, ops, paynow, retention, worker

    worker.register(cli)
    archive.register(cli)
    ops.register(cli)
    paynow.register(cli)
    emulate.register(cli)
    retention.register(cli)
    cli.add_command(demo.demo)


_register_more()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
