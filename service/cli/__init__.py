"""The `kwit` command line: a Click group whose commands run inside the Kwit app.

A plain Click group, not Flask's FlaskGroup: Kwit's commands are the whole interface, so there
are no `--app`/`--debug`/`--env-file` options, no second dev server (`run`) and no plugin
commands from whatever else is installed. `with_appcontext` still works: the group hands every
command a ScriptInfo that builds the app from KWIT_* variables on first use.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo

from service.config import ConfigError


def _load_app() -> Flask:
    from service.app import create_app

    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    # Pools and clients close when the command ends (not with each app context: `kwit serve`
    # pushes one per request).
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.find_root().call_on_close(app.extensions["kwit"].close)
    return app


class KwitGroup(click.Group):
    """The root group: gives each invocation its own lazily loaded Kwit app."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        extra.setdefault(
            "obj",
            ScriptInfo(create_app=_load_app, set_debug_flag=False, load_dotenv_defaults=False),
        )
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=KwitGroup)
def cli() -> None:
    """Kwit: payment webhooks in, VAT invoices out.

    Configuration comes from KWIT_* environment variables (see README). With none set, Kwit
    uses a local SQLite file and runs jobs inline.
    """


def main() -> None:
    """The `kwit` console script."""
    cli(prog_name="kwit")


def _register() -> None:
    """One module per command group, each next to the functions it calls."""
    from service.cli import archive, db, demo, emulate, keys, ops, paynow, retention, serve, worker

    for module in (serve, worker, db, keys, archive, ops, paynow, emulate, retention):
        module.register(cli)
    cli.add_command(demo.demo)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
