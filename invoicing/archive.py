"""The accountants' invoice archive: a ZIP streamed in near-constant memory (no Flask here).

``export`` yields ``invoices/<number>.pdf`` (stored: PDFs are already compressed), then
``manifest.csv``, ``manifest.json``, ``README.txt`` and last ``SHA256SUMS`` (deflated); the
listings are built by invoicing/archive_manifest.py. A missing PDF never stops the export: its
row gets an empty ``file`` and a ``note``. A PDF whose bytes differ from the checksum recorded
at issue is shipped as it is, with its actual checksum, and flagged: broken storage must be
visible. Rows come in batches (``yield_per``), PDFs in 64 KiB chunks, and the manifests are
spooled to temporary files while the PDFs stream. Only the ZIP central directory and the checksum list grow with the number of
invoices (about 1.3 KB each: 13 MB for 10,000, see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from invoicing.archive_manifest import (
    CSV_COLUMNS,
    ArchiveSummary,
    add_to_totals,
    csv_row,
    json_head,
    json_tail,
    manifest_record,
    readme,
    write_csv_line,
)
from models import Invoice, InvoiceState
from models.blobs import BlobNotFound, BlobStore

__all__ = [
    "CSV_COLUMNS",
    "MAX_PERIOD_DAYS",
    "ArchiveStream",
    "ArchiveSummary",
    "PeriodError",
    "archive_filename",
    "count_invoices",
    "export",
    "pdf_filename",
    "validate_period",
]

MAX_PERIOD_DAYS = 366  # a leap year; longer periods are split by the caller
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in "123456789"
}
_WARSAW = ZoneInfo("Europe/Warsaw")
_SPOOL = 1024 * 1024  # manifests stay in memory up to 1 MiB, then move to a temporary file
_CHUNK = 64 * 1024


class PeriodError(ValueError):
    """A bad period; `param` names the offending parameter ("from" or "to")."""

    def __init__(self, param: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.hint = hint


def validate_period(start: date, end: date) -> None:
    """Both days inclusive; `start` ≤ `end` and at most MAX_PERIOD_DAYS days."""
    if start > end:
        raise PeriodError("from", f"`from` ({start}) is after `to` ({end}).")
    days = (end - start).days + 1
    if days > MAX_PERIOD_DAYS:
        raise PeriodError(
            "to",
            f"The period has {days} days; at most {MAX_PERIOD_DAYS} fit in one archive.",
            hint="Split the period into years and export one archive per year.",
        )


def archive_filename(start: date, end: date) -> str:
    """The archive's file name: kwit-invoices-<from>-<to>.zip."""
    return f"kwit-invoices-{start.isoformat()}-{end.isoformat()}.zip"


def pdf_filename(number: str | None, fallback: str) -> str:
    """A portable file name for an invoice number: "12/11/2026" → "12_11_2026.pdf"."""
    text = unicodedata.normalize("NFKD", (number or "").replace("ł", "l").replace("Ł", "L"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    stem = _UNSAFE.sub("_", text).strip("._")[:100] or fallback
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"  # "CON.pdf" cannot be created on Windows
    return f"{stem}.pdf"


class ArchiveStream(Iterator[bytes]):
    """The archive's bytes; `summary` fills in as they are consumed."""

    def __init__(self, chunks: Iterator[bytes], summary: ArchiveSummary) -> None:
        self._chunks = chunks
        self.summary = summary

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        """Stop early (client gone); releases the database cursor and temporary files."""
        self._chunks.close()  # type: ignore[attr-defined]


_COLUMNS = (  # noqa: SIM905
    "id number kind ksef_number issue_date sale_date totals gross_minor currency buyer_nip "
    "provider provider_payment_id retention_basis retain_until pdf_key pdf_sha256"
).split()


def _select(start: date, end: date) -> sa.Select[Any]:
    original = aliased(Invoice)
    columns = [getattr(Invoice, name) for name in _COLUMNS]
    return (
        sa.select(*columns, original.number.label("correction_of"))
        .outerjoin(original, Invoice.corrects_invoice_id == original.id)
        .where(Invoice.state == InvoiceState.ISSUED)
        .where(Invoice.issue_date >= start, Invoice.issue_date <= end)
        .order_by(Invoice.issue_date, Invoice.number, Invoice.id)
    )


def count_invoices(session: Session, start: date, end: date) -> int:
    """How many invoices an archive of this period holds (for a progress bar)."""
    return session.scalar(sa.select(sa.func.count()).select_from(_select(start, end).subquery()))


def export(
    session: Session,
    blobs: BlobStore,
    *,
    start: date,
    end: date,
    generated_at: datetime,
    progress: Callable[[int], None] | None = None,
    batch: int = 500,
) -> ArchiveStream:
    """Stream the archive of issued invoices with issue_date in [start, end].

    The caller owns `session` and keeps it open until the stream ends. `generated_at` must be
    timezone-aware; it is printed in README and used as every file's timestamp, so the same
    data and `generated_at` always give the same bytes. `progress(1)` runs after each invoice.
    """
    validate_period(start, end)
    if generated_at.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    summary = ArchiveSummary(start=start, end=end, generated_at=generated_at)
    rows = session.execute(_select(start, end).execution_options(yield_per=batch))
    return ArchiveStream(_generate(rows, blobs, summary, progress), summary)


class _Sink:
    """Write-only and unseekable, so zipfile streams: sizes go in data descriptors."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _Writer:
    """Adds entries to the ZIP and records each file's sha256 for SHA256SUMS."""

    def __init__(self, generated_at: datetime) -> None:
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", compresslevel=6)
        self.stamp = generated_at.astimezone(_WARSAW).timetuple()[:6]
        self.sums: list[tuple[str, str]] = []
        self.archive_hash = hashlib.sha256()
        self.size = 0

    def _out(self) -> Iterator[bytes]:
        # Deflate buffers input, so a write may produce nothing; never yield an empty chunk.
        data, self.sink.parts = b"".join(self.sink.parts), []
        if data:
            self.archive_hash.update(data)
            self.size += len(data)
            yield data

    def entry(self, name: str, chunks: Iterator[bytes], *, deflate: bool) -> Iterator[bytes]:
        info = zipfile.ZipInfo(name, date_time=self.stamp)  # type: ignore[arg-type]
        info.create_system = 3  # Unix, so the permission bits below mean something
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        digest = hashlib.sha256()
        with self.zip.open(info, "w") as dest:
            for chunk in chunks:
                digest.update(chunk)
                dest.write(chunk)
                yield from self._out()
        yield from self._out()  # the rest of the compressed data and the data descriptor
        self.sums.append((digest.hexdigest(), name))

    def finish(self) -> Iterator[bytes]:
        self.zip.close()  # the central directory
        yield from self._out()


def _generate(
    rows: sa.Result[Any],
    blobs: BlobStore,
    summary: ArchiveSummary,
    progress: Callable[[int], None] | None,
) -> Iterator[bytes]:
    writer = _Writer(summary.generated_at)
    used: set[str] = set()
    with (
        rows,  # closing releases the server-side cursor, also when the client goes away
        tempfile.SpooledTemporaryFile(_SPOOL) as csv_file,
        tempfile.SpooledTemporaryFile(_SPOOL) as json_file,
    ):
        csv_file.write("\ufeff".encode())  # BOM: Excel then reads the file as UTF-8
        write_csv_line(csv_file, CSV_COLUMNS)
        json_file.write(json_head(summary).encode())
        for index, row in enumerate(rows):
            file, sha256, note = yield from _add_pdf(writer, blobs, row, used, summary)
            add_to_totals(summary, row)
            record = manifest_record(row, file, sha256, note)
            write_csv_line(csv_file, csv_row(record))
            item = json.dumps(record, ensure_ascii=False)
            json_file.write(((",\n" if index else "\n") + item).encode())
            if progress is not None:
                progress(1)
        json_file.write(json_tail(summary).encode())
        yield from writer.entry("manifest.csv", _replay(csv_file), deflate=True)
        yield from writer.entry("manifest.json", _replay(json_file), deflate=True)
    # BOM and CRLF: even old Windows Notepad shows the Polish text correctly.
    name = archive_filename(summary.start, summary.end)
    readme_text = ("\ufeff" + readme(summary, name).replace("\n", "\r\n")).encode()
    yield from writer.entry("README.txt", iter([readme_text]), deflate=True)
    sums = "".join(f"{digest}  {name}\n" for digest, name in writer.sums).encode()
    yield from writer.entry("SHA256SUMS", iter([sums]), deflate=True)
    yield from writer.finish()
    summary.bytes, summary.sha256 = writer.size, writer.archive_hash.hexdigest()
    summary.complete = True


def _add_pdf(
    writer: _Writer, blobs: BlobStore, row: Any, used: set[str], summary: ArchiveSummary
) -> Iterator[bytes]:
    """Stream one invoice's PDF into the ZIP; returns (file, sha256, note) for its row."""
    chunks = _open_pdf(blobs, row.pdf_key)
    if chunks is None:
        note = "PDF missing from storage" if row.pdf_key else "no PDF was stored"
        summary.missing.append(f"{row.number} - {note}")
        return "", "", note
    file = f"invoices/{_unique(pdf_filename(row.number, row.id), used)}"
    yield from writer.entry(file, chunks, deflate=False)
    sha256, note = writer.sums[-1][0], ""
    summary.pdfs += 1
    if not row.pdf_sha256:
        note = "no checksum was recorded at issue"
    elif sha256 != row.pdf_sha256.lower():
        note = f"PDF checksum differs from the one recorded at issue ({row.pdf_sha256})"
        summary.mismatched.append(f"{row.number} ({file}) - {note}")
    return file, sha256, note


def _open_pdf(blobs: BlobStore, key: str | None) -> Iterator[bytes] | None:
    """The PDF's chunks, or None when there is none; looks before the ZIP entry is opened."""
    if not key:
        return None
    chunks = blobs.read_chunks(key)
    try:
        first = next(chunks, b"")
    except BlobNotFound:
        return None

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    return rest()


def _unique(name: str, used: set[str]) -> str:
    stem, candidate, n = name.removesuffix(".pdf"), name, 1
    while candidate.lower() in used:  # case-insensitive: Windows and macOS file systems
        n += 1
        candidate = f"{stem}__{n}.pdf"
    used.add(candidate.lower())
    return candidate


def _replay(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(_CHUNK):
        yield chunk
