"""`kwit keys create|list|revoke|fernet`: API keys and encryption keys."""

from __future__ import annotations

from collections.abc import Sequence

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from models import ApiKey, Role, utcnow
from models.vault import Vault


def register(cli: click.Group) -> None:
    cli.add_command(keys_group)


@click.group("keys")
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
    from service.db import runtime

    with runtime().sessions() as session:
        keys = session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)).all()
    if not keys:
        click.echo("No API keys. Create one with: kwit keys create --role admin NAME")
        return
    for line in key_table(keys):
        click.echo(line)


def key_table(keys: Sequence[ApiKey]) -> list[str]:
    """The `kwit keys list` table: a header line and one line per key."""
    lines = [f"{'PREFIX':<10} {'ROLE':<11} {'CREATED':<20} {'REVOKED':<20} NAME"]
    for key in keys:
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-"
        created = key.created_at.strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"{key.prefix:<10} {key.role.value:<11} {created:<20} {revoked:<20} {key.name}"
        )
    return lines


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
    click.echo(Vault.generate_key())
