"""The archive's listings: manifest.csv, manifest.json and README.txt, and their running totals.

invoicing/archive.py streams the ZIP and feeds each invoice row through these functions; the
formats are explained to the accountant in README.txt (``_README_HELP``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from invoicing.money import from_minor
from invoicing.payload import VAT_RATES
from models import InvoiceKind

RATES = tuple(VAT_RATES)  # "23", "8", "5", "0", "zw", "np": fixed CSV columns
CSV_COLUMNS = (
    ["number", "kind", "ksef_number", "issue_date", "sale_date"]
    + [f"{part}_{rate}" for rate in RATES for part in ("net", "vat", "gross")]
    + ["gross_total", "currency", "buyer_nip", "provider", "provider_payment_id"]
    + ["correction_of", "retention_basis", "retain_until", "file", "sha256", "note"]
)
# Text cells starting with these are formulas to Excel; see _cell().
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def add_to_totals(summary: ArchiveSummary, row: Any) -> None:
    """Count the invoice and add its amounts to the per-kind, per-currency totals."""
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


def write_csv_line(spool: IO[bytes], values: list[str]) -> None:
    """One manifest.csv line: ';' between fields, CRLF at the end (what Excel expects)."""
    line = io.StringIO()
    csv.writer(line, delimiter=";", lineterminator="\r\n").writerow(values)
    spool.write(line.getvalue().encode())


def _cell(value: str | None) -> str:
    """A text cell; one that Excel would run as a formula gets a leading apostrophe (OWASP)."""
    value = value or ""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def manifest_record(row: Any, file: str, sha256: str, note: str) -> dict[str, Any]:
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


def csv_row(rec: dict[str, Any]) -> list[str]:
    """The manifest.csv cells of a manifest record: decimal commas, formula-safe text."""
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


def json_head(summary: ArchiveSummary) -> str:
    """manifest.json up to the opening of its "invoices" list (records follow, streamed)."""
    head = {
        "format": "kwit-invoice-archive/1",
        "period": {"from": summary.start.isoformat(), "to": summary.end.isoformat()},
        "generated_at": summary.generated_at.isoformat(timespec="seconds"),
        "amounts": "*_minor: integer grosze (1/100 of the currency); the same without _minor: "
        "decimal strings with a dot and two places",
    }
    fields = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items()]
    return "{\n" + ",\n".join(fields) + ',\n "invoices": ['


def json_tail(summary: ArchiveSummary) -> str:
    """The end of manifest.json: the list closed, then the summary counts."""
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


def readme(s: ArchiveSummary, name: str) -> str:
    """README.txt for archive file `name`: counts, totals, problems, then how to read it."""
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
    return "\n".join(lines) + "\n" + _README_HELP.format(name=name)
