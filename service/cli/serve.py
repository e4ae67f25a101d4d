"""`kwit serve`: the development server (production runs gunicorn on wsgi:app)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from service.devserver import serve_until_stopped


def register(cli: click.Group) -> None:
    cli.add_command(serve)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@with_appcontext
def serve(host: str, port: int) -> None:
    """Serve Kwit on HOST:PORT until Ctrl-C or SIGTERM (threaded development server).

    In production use gunicorn: `gunicorn -w 4 wsgi:app`.
    """
    serve_until_stopped(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        host,
        port,
        on_ready=lambda url: click.echo(f"Kwit listening on {url} (development server)"),
    )
