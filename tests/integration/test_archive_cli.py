"""`kwit archive`: the same verifiable archive as the API, written atomically, audited, lean."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from models import AuditEntry, InvoiceKind, Order
from models.blobs import LocalBlobStore
from service.cli import cli
from tests.factories import make_issued_invoice
from tests.integration.test_archive_api import read_manifest, verify_archive

KWIT = str(Path(sys.executable).with_name("kwit"))


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    # The same blob directory as the `app` fixture's settings (tests.support.make_settings).
    return {"KWIT_DATABASE_URL": db_url, "KWIT_BLOB_DIR": str(tmp_path / "blobs")}


@pytest.fixture
def invoices(app: Any) -> dict[str, Any]:
    rt = app.extensions["kwit"]
    with rt.sessions.begin() as s:
        sale = make_issued_invoice(s, blobs=rt.blobs, number="5/11/2026")
        correction = make_issued_invoice(
            s,
            blobs=rt.blobs,
            number="1/KOR/11/2026",
            issue_date=date(2026, 11, 28),
            kind=InvoiceKind.CORRECTION,
            corrects=sale,
            order=s.get(Order, sale.order_id),
            gross_minor=-12300,
        )
        make_issued_invoice(s, number="9/11/2026", nip=None)  # its PDF was never stored
    return {"sale": sale, "correction": correction}


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, ["archive", *args], env=env, catch_exceptions=False)


def audit_rows(app: Any) -> list[AuditEntry]:
    with app.extensions["kwit"].sessions() as session:
        stmt = sa.select(AuditEntry).where(AuditEntry.action == "archive.export")
        return list(session.scalars(stmt))


def test_writes_a_verifiable_archive_and_audits_it(env, app, invoices, tmp_path) -> None:
    target = tmp_path / "out" / "listopad.zip"
    target.parent.mkdir()
    result = run(env, "--from", "2026-11-01", "--to", "2026-11-30", "-o", str(target))

    assert result.exit_code == 0, result.output
    assert "Archiving invoices" in result.stderr
    assert f"Wrote {target}: 3 invoices (1 corrections)" in result.stdout
    assert "sha256sum -c SHA256SUMS" in result.stdout
    assert "1 missing PDF(s)" in result.stderr
    assert [p.name for p in target.parent.iterdir()] == ["listopad.zip"]  # no .part left
    folder = verify_archive(target.read_bytes(), tmp_path)
    rows = {r["number"]: r for r in read_manifest(folder)}
    assert rows["1/KOR/11/2026"]["correction_of"] == "5/11/2026"
    assert rows["5/11/2026"]["sha256"] == invoices["sale"].pdf_sha256
    assert rows["9/11/2026"]["buyer_nip"] == "B2C"
    assert rows["9/11/2026"]["file"] == ""

    (row,) = audit_rows(app)
    assert (row.actor, row.object) == ("cli", "invoices:2026-11-01..2026-11-30")
    assert row.details["outcome"] == "complete"
    assert row.details["invoices"] == 3
    assert row.details["missing_pdfs"] == 1
    assert row.details["bytes"] == target.stat().st_size
    assert row.details["file"] == str(target.resolve())


def test_default_name_and_no_silent_overwrite(env, app, invoices, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(env, "--from", "2026-11-01", "--to", "2026-11-30").exit_code == 0
    default = tmp_path / "kwit-invoices-2026-11-01-2026-11-30.zip"
    first = default.read_bytes()

    again = CliRunner().invoke(
        cli, ["archive", "--from", "2026-11-01", "--to", "2026-11-30"], env=env
    )
    assert again.exit_code != 0
    assert "already exists; use --force" in again.output
    assert default.read_bytes() == first
    forced = run(env, "--from", "2026-11-01", "--to", "2026-11-30", "--force")
    assert forced.exit_code == 0
    verify_archive(default.read_bytes(), tmp_path)


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["--from", "2026-11-31", "--to", "2026-12-01"], "'--from'", "does not match the format"),
        (["--from", "2026-11-01", "--to", "30.11.2026"], "'--to'", "does not match the format"),
        (["--from", "2026-12-01", "--to", "2026-11-30"], "'--from'", "is after"),
        (["--from", "2025-01-01", "--to", "2026-01-02"], "'--to'", "Split the period into years"),
        (["--to", "2026-11-30"], "'--from'", "Missing option"),
    ],
)
def test_bad_dates_name_the_option(env, app, tmp_path, args, option, message) -> None:
    result = CliRunner().invoke(cli, ["archive", *args, "-o", str(tmp_path / "x.zip")], env=env)
    assert result.exit_code == 2
    assert option in result.output
    assert message in result.output
    assert not (tmp_path / "x.zip").exists()
    assert audit_rows(app) == []


def test_a_failure_leaves_no_file_behind(env, app, invoices, tmp_path, monkeypatch) -> None:
    real = LocalBlobStore.read_chunks

    def failing(self, key):
        yield next(real(self, key))
        raise OSError("disk gone")

    monkeypatch.setattr(LocalBlobStore, "read_chunks", failing)
    target = tmp_path / "out.zip"
    result = CliRunner().invoke(
        cli, ["archive", "--from", "2026-11-01", "--to", "2026-11-30", "-o", str(target)], env=env
    )
    assert result.exit_code == 1
    assert "the archive was not written: disk gone" in result.output
    assert not target.exists()
    assert not target.with_name("out.zip.part").exists()
    (row,) = audit_rows(app)
    assert row.details["outcome"] == "failed"


def test_help_explains_the_command() -> None:
    result = CliRunner().invoke(cli, ["archive", "--help"])
    assert result.exit_code == 0
    for text in ("--from YYYY-MM-DD", "--to YYYY-MM-DD", "-o, --output FILE", "--force", "366"):
        assert text in result.output


# ---------------------------------------------------------------- memory


def peak_rss_mb(env: dict[str, str], *args: str) -> float:
    """Run `kwit archive` in a child process; its own peak RSS (os.wait4 is per child)."""
    with open(os.devnull, "wb") as devnull:
        child = subprocess.Popen(
            [KWIT, "archive", *args], env={**os.environ, **env}, stdout=devnull, stderr=devnull
        )
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    return usage.ru_maxrss / 1024  # kilobytes on Linux


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (Unix)")
def test_export_memory_does_not_grow_with_the_archive(pg_db, tmp_path) -> None:
    """300 invoices with 50 KB incompressible PDFs: a 15 MB archive, RSS grows by far less."""
    from models.session import make_engine, make_session_factory

    blobs = LocalBlobStore(tmp_path / "blobs")
    engine = make_engine(pg_db)
    with make_session_factory(engine).begin() as s:
        for n in range(300):
            day = date(2026, 1, 1) + timedelta(days=n % 28)
            make_issued_invoice(
                s,
                blobs=blobs,
                number=f"{n}/1/2026",
                issue_date=day,
                pdf=b"%PDF" + secrets.token_bytes(50_000),
            )
    engine.dispose()
    env = {"KWIT_DATABASE_URL": pg_db, "KWIT_BLOB_DIR": str(tmp_path / "blobs")}

    empty = peak_rss_mb(
        env, "--from", "2025-01-01", "--to", "2025-01-31", "-o", str(tmp_path / "e.zip")
    )
    full = peak_rss_mb(
        env, "--from", "2026-01-01", "--to", "2026-01-31", "-o", str(tmp_path / "f.zip")
    )

    size_mb = (tmp_path / "f.zip").stat().st_size / 1e6
    assert size_mb > 15
    assert full - empty < 8, f"RSS grew by {full - empty:.1f} MB for a {size_mb:.0f} MB archive"
