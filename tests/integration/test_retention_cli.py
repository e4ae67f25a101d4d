"""`kwit retention run|table`: dry run, real run, idempotence, one audit entry, the rule table."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from compliance.retention import RetentionEngine
from compliance.retention_doc import render_retention_doc
from compliance.tags import retag_order
from models import AuditEntry, Invoice, Order, Payment
from service.cli import cli
from service.retention_ops import run_retention
from tests.factories import make_issued_invoice

ROOT = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)
COLUMNS = ("eligible", "held", "deleted", "anonymised", "kept")


@pytest.fixture
def rt(app):
    return app.extensions["kwit"]


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"KWIT_DATABASE_URL": db_url, "KWIT_BLOB_DIR": str(tmp_path / "blobs")}


@pytest.fixture
def issued(rt) -> dict[str, str]:
    """An invoice of 2026-06-10 (kept to 2032-12-31) with its PDF, order and payment."""
    with rt.sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=rt.blobs, issue_date=date(2026, 6, 10))
        retag_order(s, rt.retention, invoice.order_id)
        return {"invoice": invoice.id, "order": invoice.order_id, "pdf": invoice.pdf_key}


@pytest.fixture
def expired(rt, issued) -> dict[str, str]:
    """The same rows, their retention over yesterday, so that --as-of today purges them.

    Dated today, the CLI's own audit entries (kept 365 days) stay out of the counts.
    """
    with rt.sessions.begin() as s:
        for model in (Invoice, Payment, Order):
            s.execute(sa.update(model).values(retain_until=YESTERDAY))
    return issued


def kwit(env, *args):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def table(output: str) -> dict[str, dict[str, int]]:
    """The per-kind rows of the printed report."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[1].isdigit():
            rows[parts[0]] = dict(zip(COLUMNS, map(int, parts[1:]), strict=True))
    return rows


def audit_rows(rt) -> list[AuditEntry]:
    with rt.sessions() as s:
        stmt = sa.select(AuditEntry).where(AuditEntry.action.like("retention.%"))
        return list(s.scalars(stmt.order_by(AuditEntry.at)))


def test_dry_run_then_run_then_nothing_more(rt, env, expired) -> None:
    as_of = TODAY.isoformat()
    dry = kwit(env, "retention", "run", "--dry-run", "--as-of", as_of)
    assert dry.exit_code == 0, dry.output
    assert "Dry run, nothing changed" in dry.output
    dry_counts = table(dry.output)
    for kind in ("invoices", "payments", "orders"):
        assert dry_counts[kind]["eligible"] == dry_counts[kind]["deleted"] == 1, kind
    assert "invoice PDFs would be deleted: 1" in dry.output
    assert rt.blobs.exists(expired["pdf"])
    with rt.sessions() as s:
        assert s.get(Invoice, expired["invoice"]) is not None

    real = kwit(env, "retention", "run", "--as-of", as_of)
    assert real.exit_code == 0, real.output
    assert table(real.output) == dry_counts
    assert "invoice PDFs deleted: 1" in real.output
    assert not rt.blobs.exists(expired["pdf"])
    with rt.sessions() as s:
        assert s.get(Invoice, expired["invoice"]) is None
        assert s.get(Order, expired["order"]) is None

    again = kwit(env, "retention", "run", "--as-of", as_of)
    assert table(again.output)["total"] == dict.fromkeys(COLUMNS, 0)

    entries = audit_rows(rt)
    assert [e.action for e in entries] == ["retention.dry_run", "retention.run", "retention.run"]
    assert {e.actor for e in entries} == {"cli"}
    assert entries[0].details["counts"] == entries[1].details["counts"]
    assert entries[1].details["counts"]["invoices"]["deleted"] == 1
    assert entries[1].details["as_of"] == as_of
    assert entries[2].details["counts"]["invoices"]["deleted"] == 0
    assert all(e.retain_until is not None for e in entries)  # the audit rows are tagged too


def test_the_day_before_nothing_is_purged(rt, env, expired) -> None:
    result = kwit(env, "retention", "run", "--as-of", YESTERDAY.isoformat())
    assert result.exit_code == 0
    assert table(result.output)["total"]["deleted"] == 0
    assert rt.blobs.exists(expired["pdf"])


def test_default_as_of_is_today(rt, env, expired) -> None:
    result = kwit(env, "retention", "run")
    assert f"as of {TODAY.isoformat()}" in result.output
    assert table(result.output)["invoices"]["deleted"] == 1


def test_run_retention_dry_run_reports_exactly_what_the_run_does(rt, issued) -> None:
    now = datetime(2033, 1, 1, 3, 0, tzinfo=UTC)  # the clock the worker would pass
    dry = run_retention(rt, today=date(2033, 1, 1), dry_run=True, actor="worker", now=now)
    assert rt.blobs.exists(issued["pdf"])
    real = run_retention(rt, today=date(2033, 1, 1), actor="worker", now=now)
    assert real.counts == dry.counts
    assert real.counts["invoices"]["deleted"] == 1
    assert not rt.blobs.exists(issued["pdf"])
    entries = audit_rows(rt)
    assert [(e.actor, e.action, e.at) for e in entries] == [
        ("worker", "retention.dry_run", now),
        ("worker", "retention.run", now),
    ]
    assert entries[0].details["counts"] == entries[1].details["counts"]


def test_bad_date_is_a_usage_error(env) -> None:
    result = CliRunner().invoke(cli, ["retention", "run", "--as-of", "2033-13-01"], env=env)
    assert result.exit_code == 2
    assert "--as-of" in result.output


def test_table_prints_and_writes_the_effective_rules(env, tmp_path) -> None:
    printed = kwit(env, "retention", "table")
    assert printed.exit_code == 0
    assert printed.output.startswith("# Retention periods")
    assert "`PL_VAT_112+OP_70_1`" in printed.output
    assert "## How to change it" in printed.output

    target = tmp_path / "out" / "retention.md"
    assert kwit(env, "retention", "table", "-o", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8") == printed.output


def test_table_follows_the_policy_file(env, tmp_path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(
        '{"rules": {"order": {"eoy_years": 7}, "payment": {"eoy_years": 7},'
        ' "audit_log": {"days": 60}}}',
        encoding="utf-8",
    )
    result = kwit({**env, "KWIT_RETENTION_POLICY_FILE": str(policy)}, "retention", "table")
    assert result.exit_code == 0
    assert "`POLICY_ORDER_7Y`" in result.output
    assert "`POLICY_AUDIT_LOG_60D`" in result.output
    assert "`GDPR_5_1_E_LOG_365D`" not in result.output  # a log policy replaces the default


def test_docs_retention_md_is_the_generated_pl_table() -> None:
    committed = (ROOT / "docs" / "retention.md").read_text(encoding="utf-8")
    assert committed == render_retention_doc(RetentionEngine("PL")), (
        "docs/retention.md is stale: run `kwit retention table -o docs/retention.md`"
    )


def test_retention_commands_have_help() -> None:
    for path in (["retention"], ["retention", "run"], ["retention", "table"]):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage: " in result.output
