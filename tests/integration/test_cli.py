"""The `kwit` command line: keys, db, worker, demo, and readable configuration errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from service.cli import cli

KWIT = str(Path(sys.executable).with_name("kwit"))


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"KWIT_DATABASE_URL": db_url, "KWIT_BLOB_DIR": str(tmp_path / "blobs")}


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand under `group`, through nested groups."""
    paths = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def test_every_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    paths = command_paths(cli)
    # The walk really goes through the groups.
    for expected in [("serve",), ("worker",), ("db", "upgrade"), ("keys", "create"), ("demo",)]:
        assert expected in paths
    assert ("emulate", "ifirma") in paths
    assert ("retention", "run") in paths
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"], prog_name="kwit")
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: kwit {' '.join(path)}" in result.output, path
        command = cli
        for name in path:
            command = command.get_command(click.Context(command), name)
        description = (command.help or "").strip()
        assert len(description) >= 20, (path, description)
        assert description.split("\n")[0] in result.output.replace("\n  ", " "), path


def test_top_level_help_shows_only_kwit_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for flask_only in ("--app", "--debug", "--env-file", "--version"):
        assert flask_only not in result.output
    commands = result.output.split("Commands:", 1)[1].split()
    assert "serve" in commands
    assert "run" not in commands
    assert "routes" not in commands


def test_keys_create_list_revoke(env: dict[str, str], client) -> None:
    created = invoke(env, "keys", "create", "--role", "accountant", "books")
    assert created.exit_code == 0
    token = created.stdout.strip().splitlines()[0]
    assert re.fullmatch(r"kwit_[a-z0-9]{8}_[A-Za-z0-9_-]{40,}", token)
    prefix = token.split("_")[1]
    assert (
        client.get("/v1/invoices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )

    listed = invoke(env, "keys", "list")
    assert prefix in listed.output
    assert "accountant" in listed.output
    assert token.split("_", 2)[2] not in listed.output

    assert invoke(env, "keys", "revoke", prefix).exit_code == 0
    assert (
        client.get("/v1/invoices", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    again = CliRunner().invoke(cli, ["keys", "revoke", prefix], env=env)
    assert again.exit_code != 0
    assert "no active key" in again.output


def test_bad_configuration_is_a_readable_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["keys", "list"], env={"KWIT_REDIS_URL": "localhost:6379"})
    assert result.exit_code != 0
    assert "configuration error: KWIT_REDIS_URL" in result.output
    assert "Traceback" not in result.output


def test_worker_without_redis_explains_why(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["worker", "--burst"], env=env)
    assert result.exit_code != 0
    assert "KWIT_REDIS_URL is not set" in result.output


def test_worker_runs_in_burst_mode_on_real_redis(
    pg_db: str, redis_url: str, queue_name: str
) -> None:
    environ = {
        **os.environ,
        "KWIT_DATABASE_URL": pg_db,
        "KWIT_REDIS_URL": redis_url,
        "KWIT_QUEUE_NAME": queue_name,
    }
    done = subprocess.run(
        [KWIT, "worker", "--burst"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"queue {queue_name!r}" in done.stdout


def test_demo_runs_without_services(tmp_path: Path) -> None:
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = subprocess.run(
        [KWIT, "demo", "--workdir", str(tmp_path / "demo")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    story = done.stdout
    assert "Backend registered order SAAS-2026-0001" in story
    assert "The buyer paid on the PayNow paywall" in story
    assert "Order is paid; invoice 1/11/" in story or "Order is paid; invoice 1/" in story
    assert "KSeF number " in story
    assert "→ applied" in story
    assert "→ duplicate (no second invoice)" in story
    assert "The accountant lists 2 issued invoices" in story
    assert "checksums verified" in story
    assert "iFirma emulator holds 2 invoices" in story
    archives = list((tmp_path / "demo").glob("kwit-invoices-*.zip"))
    assert len(archives) == 1
    assert f"The archive is {archives[0]}" in story


def test_simulate_stripe_posts_a_signed_event_kwit_accepts(app) -> None:
    import threading

    from werkzeug.serving import make_server

    from tests.support import STRIPE_SECRET

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/stripe"
    try:
        runner = CliRunner()
        for event_type in ("invoice.paid", "checkout.session.completed", "charge.refunded"):
            result = runner.invoke(
                cli,
                [
                    "simulate",
                    "stripe",
                    event_type,
                    "--url",
                    url,
                    "--secret",
                    STRIPE_SECRET,
                    "--suffix",
                    "sim",
                ],
            )
            assert result.exit_code == 0, result.output
            assert "HTTP 200" in result.output
        assert '"outcome":"applied"' in result.output.replace(" ", "")
        wrong = runner.invoke(
            cli, ["simulate", "stripe", "invoice.paid", "--url", url, "--secret", "whsec_wrong"]
        )
        assert wrong.exit_code == 1
        assert "HTTP 400" in wrong.output
    finally:
        server.shutdown()
        server.server_close()
