"""The invoice archive: layout, manifests, checksums, missing and corrupted PDFs, streaming."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from invoicing.archive import (
    CSV_COLUMNS,
    MAX_PERIOD_DAYS,
    PeriodError,
    archive_filename,
    export,
    pdf_filename,
    validate_period,
)
from models import Base, InvoiceKind, Order
from models.blobs import BlobNotFound
from tests.factories import make_issued_invoice

NOV_1, NOV_30 = date(2026, 11, 1), date(2026, 11, 30)
GENERATED = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


class MemoryBlobs:
    """A BlobStore in a dict, with 4 KiB chunks so that streaming is visible."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, data: bytes) -> tuple[str, str]:
        digest = hashlib.sha256(data).hexdigest()
        self.data[f"sha256:{digest}"] = data
        return f"sha256:{digest}", digest

    def read_chunks(self, key: str) -> Iterator[bytes]:
        if key not in self.data:
            raise BlobNotFound(key)
        body = self.data[key]
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    def read(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def exists(self, key: str) -> bool:
        return key in self.data


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


def build(sessions, blobs, start=NOV_1, end=NOV_30, **kwargs) -> tuple[bytes, object]:
    with sessions() as session:
        stream = export(session, blobs, start=start, end=end, generated_at=GENERATED, **kwargs)
        return b"".join(stream), stream.summary


def open_zip(data: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def manifest_rows(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    text = archive.read("manifest.csv").decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline=""), delimiter=";"))


def sums(archive: zipfile.ZipFile) -> dict[str, str]:
    lines = archive.read("SHA256SUMS").decode().splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in lines)
    return {line[66:]: line[:64] for line in lines}


# ---------------------------------------------------------------- names and periods


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("12/11/2026", "12_11_2026.pdf"),
        ("FV 1/ł/2026", "FV_1_l_2026.pdf"),
        ("Faktura żółć 3", "Faktura_zolc_3.pdf"),
        ("../../etc/passwd", "etc_passwd.pdf"),
        ("CON", "_CON.pdf"),
        (None, "INVOICE-ID.pdf"),
        ("///", "INVOICE-ID.pdf"),
    ],
)
def test_pdf_filename(number, expected) -> None:
    assert pdf_filename(number, "INVOICE-ID") == expected


@given(st.text(max_size=200))
def test_pdf_filename_is_always_portable(number) -> None:
    name = pdf_filename(number, "fallback")
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\.pdf", name)
    assert len(name) <= 105


def test_period_rules() -> None:
    validate_period(NOV_1, NOV_1)
    validate_period(date(2024, 1, 1), date(2024, 12, 31))  # a leap year is 366 days
    assert MAX_PERIOD_DAYS == 366
    with pytest.raises(PeriodError) as after:
        validate_period(NOV_30, NOV_1)
    assert after.value.param == "from"
    with pytest.raises(PeriodError) as long:
        validate_period(date(2025, 1, 1), date(2026, 1, 2))
    assert long.value.param == "to"
    assert "years" in long.value.hint
    assert archive_filename(NOV_1, NOV_30) == "kwit-invoices-2026-11-01-2026-11-30.zip"


# ---------------------------------------------------------------- contents


def test_archive_layout_manifests_and_checksums(sessions, blobs) -> None:
    with sessions.begin() as s:
        sale = make_issued_invoice(
            s,
            blobs=blobs,
            number="7/11/2026",
            issue_date=date(2026, 11, 20),
            ksef_number="5260250995-20261120-ABCDEF123456-01",
            retention_basis="PL_VAT_112+OP_70_1",
            retain_until=date(2032, 12, 31),
        )
        make_issued_invoice(
            s, blobs=blobs, number="3/11/2026", issue_date=date(2026, 11, 2), nip=None
        )
        correction = make_issued_invoice(
            s,
            blobs=blobs,
            number="1/KOR/11/2026",
            issue_date=date(2026, 11, 25),
            kind=InvoiceKind.CORRECTION,
            corrects=sale,
            order=s.get(Order, sale.order_id),
            gross_minor=-1230,
        )
        correction.totals = {"23": {"net_minor": -1000, "vat_minor": -230, "gross_minor": -1230}}
        make_issued_invoice(s, blobs=blobs, number="1/12/2026", issue_date=date(2026, 12, 1))
    progress: list[int] = []
    data, summary = build(sessions, blobs, progress=progress.append)

    archive = open_zip(data)
    names = archive.namelist()
    assert names == [
        "invoices/3_11_2026.pdf",
        "invoices/7_11_2026.pdf",
        "invoices/1_KOR_11_2026.pdf",
        "manifest.csv",
        "manifest.json",
        "README.txt",
        "SHA256SUMS",
    ]
    compress = {i.filename: i.compress_type for i in archive.infolist()}
    assert compress["invoices/7_11_2026.pdf"] == zipfile.ZIP_STORED
    assert compress["manifest.csv"] == zipfile.ZIP_DEFLATED
    checksums = sums(archive)
    assert set(checksums) == set(names) - {"SHA256SUMS"}
    for name, digest in checksums.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest

    rows = manifest_rows(archive)
    assert list(rows[0]) == CSV_COLUMNS
    assert [r["number"] for r in rows] == ["3/11/2026", "7/11/2026", "1/KOR/11/2026"]
    b2c, b2b, correction = rows
    assert b2c["buyer_nip"] == "B2C"
    assert b2b["buyer_nip"] == "5260250995"
    assert (b2b["net_23"], b2b["vat_23"], b2b["gross_23"], b2b["gross_total"]) == (
        "100,00",
        "23,00",
        "123,00",
        "123,00",
    )
    assert b2b["net_8"] == b2b["gross_np"] == ""
    assert b2b["ksef_number"] == "5260250995-20261120-ABCDEF123456-01"
    assert (b2b["retention_basis"], b2b["retain_until"]) == ("PL_VAT_112+OP_70_1", "2032-12-31")
    assert b2b["sha256"] == sale.pdf_sha256 == checksums["invoices/7_11_2026.pdf"]
    assert (correction["kind"], correction["correction_of"]) == ("correction", "7/11/2026")
    assert correction["gross_total"] == "-12,30"

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    items = manifest["invoices"]
    assert [i["number"] for i in items] == [r["number"] for r in rows]
    assert items[1]["totals"]["23"] == {
        "net_minor": 10000,
        "vat_minor": 2300,
        "gross_minor": 12300,
        "net": "100.00",
        "vat": "23.00",
        "gross": "123.00",
    }
    assert items[0]["buyer_nip"] is None
    assert items[0]["b2c"] is True
    assert manifest["summary"]["invoices"] == 3
    assert manifest["summary"]["corrections"] == 1

    readme = archive.read("README.txt").decode("utf-8-sig")
    assert "2026-11-01 to 2026-11-30" in readme
    assert "Invoices:              3 (sale: 2, corrections: 1)" in readme
    assert re.search(r"sale PLN 23\s+200\.00\s+46\.00\s+246\.00", readme)
    assert re.search(r"correction PLN 23\s+-10\.00\s+-2\.30\s+-12\.30", readme)
    assert "sha256sum -c SHA256SUMS" in readme
    assert "CORRUPTED" not in readme
    assert "missing PDF" not in readme
    assert progress == [1, 1, 1]
    assert (summary.invoices, summary.corrections, summary.pdfs, summary.complete) == (
        3,
        1,
        3,
        True,
    )
    assert summary.bytes == len(data)
    assert summary.sha256 == hashlib.sha256(data).hexdigest()


def test_same_data_and_time_give_the_same_bytes(sessions, blobs) -> None:
    with sessions.begin() as s:
        make_issued_invoice(s, blobs=blobs, number="1/11/2026")
    first, _ = build(sessions, blobs)
    assert build(sessions, blobs)[0] == first
    assert open_zip(first).getinfo("manifest.csv").date_time == (2026, 12, 1, 8, 30, 0)  # Warsaw


def test_missing_and_corrupted_pdfs_are_reported_not_fatal(sessions, blobs) -> None:
    with sessions.begin() as s:
        gone = make_issued_invoice(s, blobs=blobs, number="1/11/2026", pdf=b"%PDF gone")
        never = make_issued_invoice(s, blobs=None, number="2/11/2026")
        bad = make_issued_invoice(s, blobs=blobs, number="3/11/2026", pdf=b"%PDF original")
    del blobs.data[gone.pdf_key]
    blobs.data[bad.pdf_key] = b"%PDF bit rot"
    data, summary = build(sessions, blobs)

    archive = open_zip(data)
    rows = {r["number"]: r for r in manifest_rows(archive)}
    assert (rows["1/11/2026"]["file"], rows["1/11/2026"]["note"]) == (
        "",
        "PDF missing from storage",
    )
    assert (rows["2/11/2026"]["file"], rows["2/11/2026"]["note"]) == ("", "no PDF was stored")
    actual = hashlib.sha256(b"%PDF bit rot").hexdigest()
    assert rows["3/11/2026"]["sha256"] == actual != bad.pdf_sha256
    assert bad.pdf_sha256 in rows["3/11/2026"]["note"]
    assert sums(archive)["invoices/3_11_2026.pdf"] == actual
    assert archive.read("invoices/3_11_2026.pdf") == b"%PDF bit rot"
    readme = archive.read("README.txt").decode("utf-8-sig")
    assert "Missing PDFs:          2" in readme
    assert "PDF checksum errors:   1" in readme
    assert "missing PDF: 1/11/2026" in readme
    assert "CORRUPTED STORAGE: 3/11/2026" in readme
    assert never.id in {i["id"] for i in json.loads(archive.read("manifest.json"))["invoices"]}
    assert (summary.pdfs, len(summary.missing), len(summary.mismatched)) == (1, 2, 1)


def test_name_collisions_are_resolved_in_archive_order(sessions, blobs) -> None:
    with sessions.begin() as s:
        for number, day in [("A/1", 2), ("A_1", 3), ("a-1", 4), ("a/1", 5)]:
            make_issued_invoice(s, blobs=blobs, number=number, issue_date=date(2026, 11, day))
    archive = open_zip(build(sessions, blobs)[0])
    files = [r["file"] for r in manifest_rows(archive)]
    assert files == [
        "invoices/A_1.pdf",
        "invoices/A_1__2.pdf",
        "invoices/a-1.pdf",
        "invoices/a_1__3.pdf",  # differs from A_1 only in case: a clash on Windows
    ]
    assert len(set(archive.namelist())) == len(archive.namelist())


def test_text_cells_never_become_excel_formulas(sessions, blobs) -> None:
    with sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=blobs, number="1/11/2026")
        invoice.provider_payment_id = '=HYPERLINK("http://x")'
    archive = open_zip(build(sessions, blobs)[0])
    row = manifest_rows(archive)[0]
    assert row["provider_payment_id"] == '\'=HYPERLINK("http://x")'
    invoice = json.loads(archive.read("manifest.json"))["invoices"][0]
    assert invoice["provider_payment_id"] == '=HYPERLINK("http://x")'


def test_every_rate_has_fixed_columns_and_unknown_rates_are_not_dropped(sessions, blobs) -> None:
    totals = {
        "8": {"net_minor": 10000, "vat_minor": 800, "gross_minor": 10800},
        "zw": {"net_minor": 5000, "vat_minor": 0, "gross_minor": 5000},
        "oo": {"net_minor": 100, "vat_minor": 0, "gross_minor": 100},
    }
    with sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=blobs, number="1/11/2026", gross_minor=15900)
        invoice.totals = totals
    archive = open_zip(build(sessions, blobs)[0])
    row = manifest_rows(archive)[0]
    assert (row["net_8"], row["vat_8"], row["gross_8"]) == ("100,00", "8,00", "108,00")
    assert (row["net_zw"], row["vat_zw"], row["gross_zw"]) == ("50,00", "0,00", "50,00")
    assert row["gross_23"] == ""
    assert "oo" in row["note"]
    assert (
        json.loads(archive.read("manifest.json"))["invoices"][0]["totals"]["oo"]["gross"] == "1.00"
    )
    assert sum(Decimal(row[f"gross_{r}"].replace(",", ".")) for r in ("8", "zw")) == Decimal("158")


def test_empty_period_is_a_valid_archive_with_a_header_only_manifest(sessions, blobs) -> None:
    with sessions.begin() as s:
        make_issued_invoice(s, blobs=blobs, issue_date=date(2026, 10, 31))
    data, summary = build(sessions, blobs)
    archive = open_zip(data)
    assert archive.namelist() == ["manifest.csv", "manifest.json", "README.txt", "SHA256SUMS"]
    assert archive.read("manifest.csv").decode("utf-8-sig") == ";".join(CSV_COLUMNS) + "\r\n"
    assert json.loads(archive.read("manifest.json"))["invoices"] == []
    assert summary.invoices == 0
    assert summary.complete


def test_pdfs_stream_in_bounded_chunks(sessions, blobs) -> None:
    big = b"%PDF" + bytes(range(256)) * 8192  # 2 MiB
    with sessions.begin() as s:
        make_issued_invoice(s, blobs=blobs, number="1/11/2026", pdf=big)
    with sessions() as session:
        stream = export(session, blobs, start=NOV_1, end=NOV_30, generated_at=GENERATED)
        chunks = list(stream)
    assert max(len(c) for c in chunks) < 64 * 1024
    assert all(chunks)
    assert open_zip(b"".join(chunks)).read("invoices/1_11_2026.pdf") == big


def test_closing_early_leaves_the_summary_incomplete(sessions, blobs) -> None:
    with sessions.begin() as s:
        make_issued_invoice(s, blobs=blobs, number="1/11/2026")
    with sessions() as session:
        stream = export(session, blobs, start=NOV_1, end=NOV_30, generated_at=GENERATED)
        next(stream)
        stream.close()
        assert not stream.summary.complete
        with pytest.raises(StopIteration):
            next(stream)


def test_export_refuses_a_bad_period_or_a_naive_time(sessions, blobs) -> None:
    with sessions() as session, pytest.raises(PeriodError):
        export(session, blobs, start=NOV_30, end=NOV_1, generated_at=GENERATED)
    with sessions() as session, pytest.raises(ValueError, match="timezone"):
        export(session, blobs, start=NOV_1, end=NOV_30, generated_at=datetime(2026, 12, 1))
