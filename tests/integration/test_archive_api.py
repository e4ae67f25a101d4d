"""GET /v1/archives/invoices and GET /v1/invoices/{id}/pdf, on SQLite and PostgreSQL.

Archives are checked the way an accountant would: `unzip -t` and `sha256sum -c SHA256SUMS` when
those tools are installed (CI must have them: with KWIT_REQUIRE_SERVICES=1 a missing tool fails
the run), and always with Python's zipfile plus a hand-rolled SHA256SUMS check.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from models import AuditEntry, Invoice, InvoiceKind, Order
from models.blobs import LocalBlobStore
from tests.factories import make_issued_invoice
from tests.support import assert_problem, auth

URL = "/v1/archives/invoices"
NOVEMBER = f"{URL}?from=2026-11-01&to=2026-11-30"


def verify_archive(data: bytes, tmp_path: Path) -> Path:
    """Unpack and verify an archive like an accountant would; returns the unpacked folder."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist()[-1] == "SHA256SUMS"
    folder = tmp_path / "unpacked"
    archive.extractall(folder)
    listed = (folder / "SHA256SUMS").read_text().splitlines()
    assert {line[66:] for line in listed} == set(archive.namelist()) - {"SHA256SUMS"}
    for line in listed:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    tools = [shutil.which("unzip"), shutil.which("sha256sum")]
    if None in tools:
        if os.environ.get("KWIT_REQUIRE_SERVICES") == "1":
            pytest.fail("unzip and sha256sum must be installed in CI", pytrace=False)
        return folder
    tested = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "No errors detected" in tested.stdout
    checked = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(listed)
    return folder


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """manifest.csv as Excel reads it: UTF-8 with BOM, `;`-separated."""
    with (folder / "manifest.csv").open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def pln(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}".replace(".", ",")


def audit_rows(app: Any, action: str | None = None) -> list[AuditEntry]:
    with app.extensions["kwit"].sessions() as session:
        stmt = sa.select(AuditEntry).order_by(AuditEntry.at)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(session.scalars(stmt))


@pytest.fixture
def blobs(app: Any) -> LocalBlobStore:
    return app.extensions["kwit"].blobs


@pytest.fixture
def november(app: Any, blobs: LocalBlobStore) -> dict[str, str]:
    """Two sales (B2B, B2C), a correction of the first, one invoice without PDF, one outside."""
    with app.extensions["kwit"].sessions.begin() as s:
        sale = make_issued_invoice(
            s,
            blobs=blobs,
            number="12/11/2026",
            issue_date=date(2026, 11, 12),
            ksef_number="5260250995-20261112-0A1B2C3D4E5F-AB",
            retention_basis="PL_VAT_112+OP_70_1",
            retain_until=date(2032, 12, 31),
        )
        b2c = make_issued_invoice(
            s, blobs=blobs, number="3/11/2026", issue_date=date(2026, 11, 3), nip=None
        )
        correction = make_issued_invoice(
            s,
            blobs=blobs,
            number="1/KOR/11/2026",
            issue_date=date(2026, 11, 30),
            kind=InvoiceKind.CORRECTION,
            corrects=sale,
            order=s.get(Order, sale.order_id),
            gross_minor=-2460,
            retention_basis="PL_VAT_112+OP_70_1",
            retain_until=date(2032, 12, 31),
        )
        correction.totals = {"23": {"net_minor": -2000, "vat_minor": -460, "gross_minor": -2460}}
        no_pdf = make_issued_invoice(s, number="20/11/2026", issue_date=date(2026, 11, 20))
        make_issued_invoice(s, blobs=blobs, number="1/12/2026", issue_date=date(2026, 12, 1))
        return {"sale": sale.id, "b2c": b2c.id, "correction": correction.id, "no_pdf": no_pdf.id}


def test_accountant_downloads_a_verifiable_archive(
    client, app, make_key, november, tmp_path
) -> None:
    response = client.get(NOVEMBER, headers=auth(make_key("accountant", "books")))

    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="kwit-invoices-2026-11-01-2026-11-30.zip"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    folder = verify_archive(response.data, tmp_path)
    assert sorted(p.name for p in (folder / "invoices").iterdir()) == [
        "12_11_2026.pdf",
        "1_KOR_11_2026.pdf",
        "3_11_2026.pdf",
    ]
    readme = (folder / "README.txt").read_text(encoding="utf-8-sig")
    assert "Invoices:              4 (sale: 3, corrections: 1)" in readme
    assert "missing PDF: 20/11/2026" in readme


def test_manifest_rows_match_the_database(client, app, make_key, november, tmp_path) -> None:
    response = client.get(NOVEMBER, headers=auth(make_key("accountant")))
    folder = verify_archive(response.data, tmp_path)
    rows = read_manifest(folder)

    with app.extensions["kwit"].sessions() as session:
        invoices = {i.number: i for i in session.scalars(sa.select(Invoice))}
    assert [r["number"] for r in rows] == ["3/11/2026", "12/11/2026", "20/11/2026", "1/KOR/11/2026"]
    for row in rows:
        invoice = invoices[row["number"]]
        assert row["kind"] == invoice.kind.value
        assert row["ksef_number"] == (invoice.ksef_number or "")
        assert row["issue_date"] == invoice.issue_date.isoformat()
        assert row["sale_date"] == invoice.sale_date.isoformat()
        for rate, t in invoice.totals.items():
            assert row[f"net_{rate}"] == pln(t["net_minor"])
            assert row[f"vat_{rate}"] == pln(t["vat_minor"])
            assert row[f"gross_{rate}"] == pln(t["gross_minor"])
        assert row["gross_total"] == pln(invoice.gross_minor)
        assert row["currency"] == "PLN"
        assert row["buyer_nip"] == (invoice.buyer_nip or "B2C")
        assert row["provider"] == invoice.provider
        assert row["provider_payment_id"] == invoice.provider_payment_id
        assert row["retention_basis"] == (invoice.retention_basis or "")
        assert row["retain_until"] == (
            invoice.retain_until.isoformat() if invoice.retain_until else ""
        )
        if invoice.pdf_key:
            assert row["sha256"] == invoice.pdf_sha256
            assert hashlib.sha256((folder / row["file"]).read_bytes()).hexdigest() == row["sha256"]
            assert row["note"] == ""
        else:
            assert (row["file"], row["sha256"], row["note"]) == ("", "", "no PDF was stored")
    by_number = {r["number"]: r for r in rows}
    assert by_number["3/11/2026"]["buyer_nip"] == "B2C"
    assert by_number["1/KOR/11/2026"]["correction_of"] == "12/11/2026"
    assert by_number["1/KOR/11/2026"]["gross_total"] == "-24,60"
    assert by_number["12/11/2026"]["correction_of"] == ""

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert [i["number"] for i in manifest["invoices"]] == [r["number"] for r in rows]
    sale = manifest["invoices"][1]
    assert (sale["gross_total_minor"], sale["gross_total"]) == (12300, "123.00")


def test_download_is_audited_with_period_counts_and_outcome(
    client, app, make_key, november
) -> None:
    response = client.get(NOVEMBER, headers=auth(make_key("accountant", "books")))
    assert response.status_code == 200
    assert response.data.startswith(b"PK\x03\x04")

    request_row, download = audit_rows(app)
    assert request_row.action == "GET archives.download_invoice_archive"
    assert request_row.object == NOVEMBER.split("?")[0]
    assert download.action == "archive.download"
    assert download.actor == request_row.actor
    assert download.actor.startswith("books (")
    assert download.object == "invoices:2026-11-01..2026-11-30"
    assert download.remote_addr == "127.0.0.1"
    assert download.retention_basis
    details = download.details
    assert details["outcome"] == "complete"
    assert (details["from"], details["to"]) == ("2026-11-01", "2026-11-30")
    assert (details["invoices"], details["corrections"], details["missing_pdfs"]) == (4, 1, 1)
    assert details["bytes"] == len(response.data)
    assert details["sha256"] == hashlib.sha256(response.data).hexdigest()


@pytest.mark.parametrize(("role", "status"), [("backend", 403), ("admin", 200)])
def test_roles(client, app, make_key, role, status) -> None:
    response = client.get(NOVEMBER, headers=auth(make_key(role)))
    assert response.status_code == status
    response.get_data()  # the stream ends (and is audited) once it has been read
    if status == 403:
        assert_problem(response, 403)
        assert audit_rows(app, "archive.download") == []
    else:
        assert len(audit_rows(app, "archive.download")) == 1


def test_without_a_key_is_401(client) -> None:
    assert_problem(client.get(NOVEMBER), 401)


def test_empty_period_gives_a_valid_archive_with_a_header_only_manifest(
    client, make_key, november, tmp_path
) -> None:
    response = client.get(f"{URL}?from=2025-01-01&to=2025-01-31", headers=auth(make_key("admin")))
    assert response.status_code == 200
    folder = verify_archive(response.data, tmp_path)
    assert read_manifest(folder) == []
    header = (folder / "manifest.csv").read_text(encoding="utf-8-sig").splitlines()
    assert header[0].startswith("number;kind;ksef_number;issue_date;sale_date;net_23;")
    assert not (folder / "invoices").exists()


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("from=2026-11-01", "to"),
        ("to=2026-11-30", "from"),
        ("from=2026-11-31&to=2026-12-01", "from"),
        ("from=01.11.2026&to=2026-11-30", "from"),
        ("from=2026-11-01&to=20261130", "to"),
        ("from=2026-12-01&to=2026-11-30", "from"),
    ],
)
def test_bad_period_is_400_naming_the_parameter(client, app, make_key, query, param) -> None:
    body = assert_problem(client.get(f"{URL}?{query}", headers=auth(make_key("accountant"))), 400)
    assert list(body["errors"]) == [param]
    assert f"`{param}`" in body["detail"]
    assert audit_rows(app, "archive.download") == []


def test_a_period_over_366_days_is_400_with_a_hint(client, make_key) -> None:
    token = make_key("accountant")
    leap_year = client.get(f"{URL}?from=2024-01-01&to=2024-12-31", headers=auth(token))
    assert leap_year.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(leap_year.data)).testzip() is None
    body = assert_problem(
        client.get(f"{URL}?from=2025-01-01&to=2026-01-02", headers=auth(token)), 400
    )
    assert list(body["errors"]) == ["to"]
    assert "367 days" in body["detail"]
    assert "366" in body["detail"]
    assert "years" in body["hint"]


def test_storage_failure_mid_stream_truncates_and_is_logged(
    client, app, make_key, november, monkeypatch, caplog
) -> None:
    real = LocalBlobStore.read_chunks

    def failing(self, key):
        yield next(real(self, key))
        raise OSError("disk gone")

    monkeypatch.setattr(LocalBlobStore, "read_chunks", failing)
    caplog.set_level(logging.ERROR, logger="kwit.archive")
    response = client.get(NOVEMBER, headers=auth(make_key("accountant")))
    assert response.status_code == 200  # the headers were already sent
    with pytest.raises(OSError, match="disk gone"):
        response.get_data()
    assert "archive stream failed mid-way" in caplog.text
    (download,) = audit_rows(app, "archive.download")
    assert download.details["outcome"] == "failed"


def test_a_client_that_goes_away_is_audited_as_aborted(client, app, make_key, november) -> None:
    response = client.get(NOVEMBER, headers=auth(make_key("accountant")))
    body = iter(response.response)
    assert next(body).startswith(b"PK\x03\x04")
    response.close()  # what the WSGI server does when the connection drops
    (download,) = audit_rows(app, "archive.download")
    assert download.details["outcome"] == "aborted"
    assert download.details["invoices"] < 4


def test_openapi_documents_the_archive_and_pdf_endpoints(client) -> None:
    spec = client.get("/openapi.json").get_json()
    archive = spec["paths"]["/v1/archives/invoices"]["get"]
    assert {p["name"] for p in archive["parameters"]} == {"from", "to"}
    assert "application/zip" in archive["responses"]["200"]["content"]
    pdf = spec["paths"]["/v1/invoices/{invoice_id}/pdf"]["get"]
    assert "application/pdf" in pdf["responses"]["200"]["content"]


# ---------------------------------------------------------------- one PDF


def test_pdf_download(client, app, make_key, blobs) -> None:
    with app.extensions["kwit"].sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=blobs, number="12/11/2026", pdf=b"%PDF-1.7 x" * 9000)
    response = client.get(f"/v1/invoices/{invoice.id}/pdf", headers=auth(make_key("accountant")))

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="12_11_2026.pdf"'
    assert response.data == b"%PDF-1.7 x" * 9000
    assert response.headers["ETag"] == f'"{invoice.pdf_sha256}"'
    (row,) = audit_rows(app, "invoice.pdf")
    assert row.object == invoice.id
    assert row.details == {"number": "12/11/2026", "sha256": invoice.pdf_sha256}


def test_pdf_not_there_is_404(client, app, make_key, blobs) -> None:
    token = make_key("accountant")
    with app.extensions["kwit"].sessions.begin() as s:
        without = make_issued_invoice(s, number="1/11/2026")
        lost = make_issued_invoice(s, blobs=blobs, number="2/11/2026", pdf=b"%PDF lost")
    blobs.delete(lost.pdf_key)

    assert_problem(client.get("/v1/invoices/nope/pdf", headers=auth(token)), 404)
    body = assert_problem(client.get(f"/v1/invoices/{without.id}/pdf", headers=auth(token)), 404)
    assert body["reason"] == "no_pdf"
    body = assert_problem(client.get(f"/v1/invoices/{lost.id}/pdf", headers=auth(token)), 404)
    assert body["reason"] == "missing"
    assert audit_rows(app, "invoice.pdf") == []


def test_pdf_is_not_for_the_backend_role(client, app, make_key, blobs) -> None:
    with app.extensions["kwit"].sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=blobs)
    response = client.get(f"/v1/invoices/{invoice.id}/pdf", headers=auth(make_key("backend")))
    assert_problem(response, 403)
