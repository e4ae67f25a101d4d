"""The accountants' invoice archive: a ZIP streamed in near-constant memory (no Flask here).

``export`` yields ``invoices/<number>.pdf`` (stored: PDFs are already compressed), then
``manifest.csv``, ``manifest.json``, ``README.txt`` and last ``SHA256SUMS`` (deflated). The
format, the CSV dialect and how to verify are explained to the accountant in README.txt (see
``_README_HELP``). A missing PDF never stops the export: its row gets an empty ``file`` and a
``note``. A PDF whose bytes differ from the checksum recorded at issue is shipped as it is, with
its actual checksum, and flagged: broken storage must be visible. Rows come in batches
(``yield_per``), PDFs in 64 KiB chunks, and the manifests are spooled to temporary files while
the PDFs stream. Only the ZIP central directory and the checksum list grow with the number of
invoices (about 1.3 KB each: 13 MB for 10,000, see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from invoicing.money import from_minor
from invoicing.payload import VAT_RATES
from models import Invoice, InvoiceKind, InvoiceState
from models.blobs import BlobNotFound, BlobStore

MAX_PERIOD_DAYS = 366  # a leap year; longer periods are split by the caller
RATES = tuple(VAT_RATES)  # "23", "8", "5", "0", "zw", "np": fixed CSV columns
CSV_COLUMNS = (
    ["number", "kind", "ksef_number", "issue_date", "sale_date"]
    + [f"{part}_{rate}" for rate in RATES for part in ("net", "vat", "gross")]
    + ["gross_total", "currency", "buyer_nip", "provider", "provider_payment_id"]
    + ["correction_of", "retention_basis", "retain_until", "file", "sha256", "note"]
)
# Text cells starting with these are formulas to Excel; see _cell().
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
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


@dataclass
class ArchiveSummary:
    """What went into the archive; complete once the stream is exhausted."""

    start: date
    end: date
    generated_at: datetime
    invoices: int = 0
    corrections: int = 0
    pdfs: int = 0
    missing: list[str] = field(default_factory=list)  # "number - reason"
    mismatched: list[str] = field(default_factory=list)
    # (kind, currency) → rate → [net, vat, gross] in minor units; "total" → [0, 0, gross]
    totals: dict[tuple[str, str], dict[str, list[int]]] = field(default_factory=dict)
    bytes: int = 0
    sha256: str = ""  # of the whole ZIP
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Counts for logs, the audit trail and manifest.json."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "invoices": self.invoices,
            "corrections": self.corrections,
            "pdfs": self.pdfs,
            "missing_pdfs": len(self.missing),
            "pdf_checksum_errors": len(self.mismatched),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "complete": self.complete,
        }


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
        _write_csv(csv_file, CSV_COLUMNS)
        json_file.write(_json_head(summary).encode())
        for index, row in enumerate(rows):
            file, sha256, note = yield from _add_pdf(writer, blobs, row, used, summary)
            _count(summary, row)
            record = _record(row, file, sha256, note)
            _write_csv(csv_file, _csv_row(record))
            item = json.dumps(record, ensure_ascii=False)
            json_file.write(((",\n" if index else "\n") + item).encode())
            if progress is not None:
                progress(1)
        json_file.write(_json_tail(summary).encode())
        yield from writer.entry("manifest.csv", _replay(csv_file), deflate=True)
        yield from writer.entry("manifest.json", _replay(json_file), deflate=True)
    # BOM and CRLF: even old Windows Notepad shows the Polish text correctly.
    readme = ("\ufeff" + _readme(summary).replace("\n", "\r\n")).encode()
    yield from writer.entry("README.txt", iter([readme]), deflate=True)
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


def _count(summary: ArchiveSummary, row: Any) -> None:
    summary.invoices += 1
    if row.kind is InvoiceKind.CORRECTION:
        summary.corrections += 1
    sums = summary.totals.setdefault((row.kind.value, row.currency), {})
    for rate, t in (row.totals or {}).items():
        acc = sums.setdefault(rate, [0, 0, 0])
        acc[0] += t["net_minor"]
        acc[1] += t["vat_minor"]
        acc[2] += t["gross_minor"]
    sums.setdefault("total", [0, 0, 0])[2] += row.gross_minor


def _write_csv(spool: IO[bytes], values: list[str]) -> None:
    line = io.StringIO()
    csv.writer(line, delimiter=";", lineterminator="\r\n").writerow(values)
    spool.write(line.getvalue().encode())


def _cell(value: str | None) -> str:
    """A text cell; one that Excel would run as a formula gets a leading apostrophe (OWASP)."""
    value = value or ""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _record(row: Any, file: str, sha256: str, note: str) -> dict[str, Any]:
    """One invoice as manifest.json shows it; manifest.csv is derived from this."""
    day = lambda d: d.isoformat() if d else None  # noqa: E731
    return {
        "id": row.id,
        "number": row.number,
        "kind": row.kind.value,
        "ksef_number": row.ksef_number,
        "issue_date": day(row.issue_date),
        "sale_date": day(row.sale_date),
        "totals": {
            rate: {**t, **{k.removesuffix("_minor"): str(from_minor(v)) for k, v in t.items()}}
            for rate, t in (row.totals or {}).items()
        },
        "gross_total_minor": row.gross_minor,
        "gross_total": str(from_minor(row.gross_minor)),
        "currency": row.currency,
        "buyer_nip": row.buyer_nip,
        "b2c": not row.buyer_nip,
        "provider": row.provider,
        "provider_payment_id": row.provider_payment_id,
        "correction_of": row.correction_of,
        "retention_basis": row.retention_basis,
        "retain_until": day(row.retain_until),
        "file": file or None,
        "sha256": sha256 or None,
        "recorded_sha256": row.pdf_sha256,
        "note": note or None,
    }


def _csv_row(rec: dict[str, Any]) -> list[str]:
    totals, note = rec["totals"], rec["note"] or ""
    amounts = [
        totals[rate][part].replace(".", ",") if rate in totals else ""
        for rate in RATES
        for part in ("net", "vat", "gross")
    ]
    if unknown := sorted(set(totals) - set(RATES)):  # never drop an amount silently
        note = "; ".join(filter(None, [note, f"rates {unknown} only in manifest.json"]))
    text = [_cell(rec[k]) for k in ("provider", "provider_payment_id", "correction_of")]
    return [
        *(_cell(rec["number"]), rec["kind"], _cell(rec["ksef_number"])),
        *(rec["issue_date"], rec["sale_date"] or "", *amounts),
        *(rec["gross_total"].replace(".", ","), rec["currency"], _cell(rec["buyer_nip"] or "B2C")),
        *text,
        *(rec["retention_basis"] or "", rec["retain_until"] or ""),
        *(rec["file"] or "", rec["sha256"] or "", note),
    ]


def _json_head(summary: ArchiveSummary) -> str:
    head = {
        "format": "kwit-invoice-archive/1",
        "period": {"from": summary.start.isoformat(), "to": summary.end.isoformat()},
        "generated_at": summary.generated_at.isoformat(timespec="seconds"),
        "amounts": "*_minor: integer grosze (1/100 of the currency); the same without _minor: "
        "decimal strings with a dot and two places",
    }
    fields = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items()]
    return "{\n" + ",\n".join(fields) + ',\n "invoices": ['


def _json_tail(summary: ArchiveSummary) -> str:
    counts = {k: v for k, v in summary.as_dict().items() if k not in ("bytes", "sha256")}
    del counts["complete"]
    counts["missing"], counts["checksum_errors"] = summary.missing, summary.mismatched
    return '\n ],\n "summary": ' + json.dumps(counts, ensure_ascii=False) + "\n}\n"


_README_HELP = """
invoices/ holds the PDFs, named after the invoice number with / and other characters that
file systems reject replaced by _. manifest.csv lists them for Excel; manifest.json holds
the same rows for programs (amounts in grosze and as decimal strings); SHA256SUMS holds the
SHA-256 checksum of every other file.

manifest.csv is UTF-8 (with BOM) with ';' between fields and a decimal comma, so Excel
with Polish regional settings opens it correctly by double-click. In LibreOffice choose
character set UTF-8, separator 'Semicolon' and language 'Polish'. Excel may show a number
such as 1/11/2026 as a date: to keep every cell exactly as written, use Data > From
Text/CSV and set the columns to Text, or use manifest.json. A text cell that starts with
= + - or @ is prefixed with ' so that Excel never runs it as a formula.

Columns: number (numer faktury), kind (sale / correction = faktura korygująca),
ksef_number (numer KSeF), issue_date (data wystawienia), sale_date (data sprzedaży),
net_R / vat_R / gross_R (netto / VAT / brutto at rate R: 23, 8, 5, 0, zw, np; empty when
the invoice has no item at that rate), gross_total, currency, buyer_nip (NIP nabywcy or
B2C), provider and provider_payment_id (the payment), correction_of (the corrected
invoice's number), retention_basis and retain_until (legal basis and end of storage),
file, sha256 (checksum of the file), note (problems).

Verify (Linux, macOS, Git Bash):
  unzip -t {name}
  unzip {name} -d kwit-archive && cd kwit-archive && sha256sum -c SHA256SUMS
  (macOS without sha256sum: shasum -a 256 -c SHA256SUMS)
Windows PowerShell: Get-FileHash -Algorithm SHA256 <file> and compare with SHA256SUMS.
The sha256 of each PDF equals the checksum Kwit recorded when the invoice was issued,
except where the note column and PROBLEMS above say otherwise.
"""


def _readme(s: ArchiveSummary) -> str:
    lines = [
        "Kwit invoice archive",
        "",
        f"Period (issue date):   {s.start} to {s.end}, both days included",
        f"Generated at:          {s.generated_at.isoformat(timespec='seconds')}",
        f"Invoices:              {s.invoices} (sale: {s.invoices - s.corrections}, "
        f"corrections: {s.corrections})",
        f"PDF files:             {s.pdfs}",
        f"Missing PDFs:          {len(s.missing)}",
        f"PDF checksum errors:   {len(s.mismatched)}",
        "",
        "Totals (as recorded on each invoice; corrections listed separately):",
        f"  {'kind currency rate':<24} {'net':>14} {'VAT':>14} {'gross':>14}",
    ]
    for (kind, currency), rates in sorted(
        s.totals.items(), key=lambda kv: (kv[0][0] != "sale", kv[0])
    ):
        for rate in [r for r in RATES if r in rates] + sorted(set(rates) - {*RATES, "total"}):
            net, vat, gross = (str(from_minor(v)) for v in rates[rate])
            lines.append(
                f"  {kind + ' ' + currency + ' ' + rate:<24} {net:>14} {vat:>14} {gross:>14}"
            )
        total = str(from_minor(rates["total"][2]))
        lines.append(f"  {kind + ' ' + currency + ' gross total':<54} {total:>14}")
    if s.missing or s.mismatched:
        lines += ["", "PROBLEMS - tell the Kwit operator; the rows' note column says the same:"]
        lines += [f"  missing PDF: {m}" for m in s.missing]
        lines += [f"  CORRUPTED STORAGE: {m}" for m in s.mismatched]
    return "\n".join(lines) + "\n" + _README_HELP.format(name=archive_filename(s.start, s.end))
