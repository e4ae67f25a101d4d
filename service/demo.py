"""`kwit demo`: the whole flow on SQLite, with no services and no configuration."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from models import Role
from models.migrate import upgrade
from service.app import create_app
from service.config import Settings


class Story:
    """Prints numbered, readable steps."""

    def __init__(self) -> None:
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        click.echo(f"{self.step:>2}. {text}")

    def detail(self, text: str) -> None:
        click.echo(f"      {text}")


def run_demo(workdir: Path) -> dict[str, Any]:
    """Run the demo in `workdir`; return what happened (for tests)."""
    from service.auth import create_key

    story = Story()
    db_path = workdir / "kwit-demo.db"
    settings = Settings(
        env="development",
        database_url=f"sqlite:///{db_path}",
        blob_dir=str(workdir / "blobs"),
        log_level="ERROR",
    )
    upgrade(settings.database_url)
    story.say(f"Created the database {db_path} (SQLite, migrated to the latest schema).")
    app = create_app(settings)
    runtime = app.extensions["kwit"]
    try:
        with runtime.sessions.begin() as session:
            admin = create_key(session, name="demo-admin", role=Role.ADMIN).token
        story.say(
            f"Created an admin API key (prefix {admin.split('_')[1]}); only its hash is stored."
        )
        client = app.test_client()
        health = client.get("/healthz").get_json()
        ready = client.get("/readyz").get_json()
        story.say(f"GET /healthz → {health['status']}; GET /readyz → {ready['status']}")
        story.detail(f"checks: {ready['checks']}")
        who = client.get("/v1/whoami", headers={"Authorization": f"Bearer {admin}"}).get_json()
        story.say(f"GET /v1/whoami with the key → {who['name']} ({who['role']})")
        denied = client.get("/v1/whoami")
        story.say(f"GET /v1/whoami without a key → {denied.status_code} {denied.content_type}")
        return {"health": health, "ready": ready, "whoami": who, "denied": denied.status_code}
    finally:
        runtime.close()


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the demo database, blobs and archive (default: a new temp directory).",
)
def demo(workdir: Path | None) -> None:
    """Run the whole Kwit flow locally on SQLite: no database, Redis or configuration needed."""
    target = workdir or Path(tempfile.mkdtemp(prefix="kwit-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    click.echo(f"Kwit demo in {target}\n")
    run_demo(target)
    click.echo(f"\nDone. Everything the demo wrote is in {target}")
