"""A small but real PDF for a stored document (fpdf2 core fonts, so ASCII text only)."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Mapping
from typing import Any

from fpdf import FPDF

# The core Helvetica font is Latin-1 without Polish letters; ł/Ł do not decompose under NFKD.
_POLISH = str.maketrans("łŁ", "lL")


def ascii_text(text: Any) -> str:
    """Transliterate to printable ASCII ("Zażółć" → "Zazolc")."""
    decomposed = unicodedata.normalize("NFKD", str(text).translate(_POLISH))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain.encode("ascii", "replace").decode("ascii")


def render_pdf(invoice: Mapping[str, Any], seller_nip: str) -> bytes:
    """One-page invoice summary containing the full number (``PelnyNumer``)."""
    pdf = FPDF(format="A4")
    pdf.set_title(ascii_text(f"Faktura {invoice['PelnyNumer']}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(
        0, 10, ascii_text(f"Faktura VAT {invoice['PelnyNumer']}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", size=10)
    buyer = invoice.get("Kontrahent") or {}
    lines = [
        f"Sprzedawca NIP: {seller_nip}",
        f"Nabywca: {buyer.get('Nazwa', invoice.get('NIPKontrahenta', ''))}",
        f"Data wystawienia: {invoice.get('DataWystawienia')}  "
        f"Data sprzedazy: {invoice.get('DataSprzedazy')}",
        "",
    ]
    for i, item in enumerate(invoice.get("Pozycje") or [], start=1):
        rate = item.get("StawkaVat")
        rate_text = item.get("TypStawkiVat") if rate is None else f"{rate * 100:.0f}%"
        lines.append(
            f"{i}. {item.get('NazwaPelna')}  {item.get('Ilosc')} {item.get('Jednostka')} x "
            f"{item.get('CenaJednostkowa')} ({invoice.get('LiczOd')}, VAT {rate_text})"
        )
    lines += [
        "",
        f"Netto: {invoice.get('Netto')} PLN   Brutto: {invoice.get('Brutto')} PLN   "
        f"Zaplacono: {invoice.get('Zaplacono')} PLN",
        f"Uwagi: {invoice.get('Uwagi') or ''}",
    ]
    for line in lines:
        # Wrapped here rather than by multi_cell, whose line breaker measured ~15 ms a page
        # and made the emulator the bottleneck of the pipeline benchmark. 10 pt Helvetica fits
        # about 105 characters across A4; 95 leaves a margin for wide letters.
        for part in textwrap.wrap(ascii_text(line), 95) or [""]:
            pdf.cell(0, 6, part, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
