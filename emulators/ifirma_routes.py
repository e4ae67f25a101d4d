"""The fake iFirma's API routes: invoices, corrections, KSeF, payments, the account.

emulators/ifirma.py wraps every route in the strict parts (auth, body parsing, faults); each
route here works on the emulator State under its lock and answers with a Reply. The routes
follow the emulator contract in docs/protocols/ifirma.md (emulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request

from emulators.ifirma_pdf import render_pdf
from emulators.ifirma_rules import (
    compute_totals,
    num,
    unknown_fields,
    validate_correction,
    validate_invoice,
)
from emulators.ifirma_state import State

__all__ = ["Reply", "envelope", "register_routes"]

Route = Callable[..., "Reply"]
Api = Callable[..., Callable[[Route], Route]]


@dataclass
class Reply:
    """What a route hands back; ``committed`` marks a stored change (for post-commit faults)."""

    body: Any
    status: int = 200
    committed: bool = False
    raw: bytes | None = None  # a PDF, or b"" for a connection we already cut


def envelope(kod: int, info: str, status: int = 200, **extra: Any) -> Reply:
    """The ``{"response": {"Kod", "Informacja", …}}`` answer."""
    return Reply({"response": {"Kod": kod, "Informacja": info, **extra}}, status)


def register_routes(api: Api, state: State, *, id_as_string: bool = False) -> None:
    """Add the iFirma routes through `api(rule, key_name=..., methods=...)`.

    ``id_as_string``: answer a create with the Identyfikator as a JSON string, not a number
    (clients must accept both).
    """

    @api("fakturakraj.json", methods=("POST",))
    def create_invoice(body: dict[str, Any]) -> Reply:
        unknown = unknown_fields(body)
        if unknown:
            return envelope(
                200, "Niepoprawna struktura obiektu: nieznane pola " + ", ".join(unknown)
            )
        known = {str(body.get("NIPKontrahenta")), str(body.get("IdentyfikatorKontrahenta"))}
        errors = validate_invoice(
            body,
            accounting=state.accounting,
            last_issue=state.last_issue,
            known_contractor=bool(known & state.contractors),
        )
        if errors:
            state.counts["validation_errors"] += 1
            return envelope(201, "Błędy walidacji: " + "; ".join(errors))
        doc = state.store("faktura", body, compute_totals(body))
        ident = str(doc.ident) if id_as_string else doc.ident
        reply = envelope(0, "Faktura została pomyślnie dodana.", Identyfikator=ident)
        reply.committed = True
        return reply

    @api("fakturakraj/<key>.json")
    def get_invoice(body: None, key: str) -> Reply:
        doc = state.find(key)
        if doc is None:
            return envelope(201, "Nie znaleziono faktury")
        state.ksef_observe(doc)
        rendered = state.render(doc)
        if state.wrap_get:
            return Reply({"response": {"Kod": 0, "Informacja": "", **rendered}})
        return Reply(rendered)

    @api("fakturakraj/<key>.pdf")
    @api("fakturakraj/<key>.pdf.<variant>")
    def get_pdf(body: None, key: str, variant: str = "single") -> Reply:
        doc = state.find(key)
        if doc is None:
            return envelope(201, "Nie znaleziono faktury")
        return Reply(None, raw=render_pdf(state.render(doc), state.seller_nip))

    @api("faktury.json")
    def list_invoices(body: None) -> Reply:
        result = state.query(request.args)
        if isinstance(result, str):
            return envelope(201, result)
        return envelope(0, "", Wynik=result)

    @api("fakturakraj/send/<key>.json", methods=("POST",))
    def send_email(body: dict[str, Any], key: str) -> Reply:
        doc = state.find(key)
        if doc is None:
            return envelope(201, "Nie znaleziono faktury")
        to = body.get("SkrzynkaEmailOdbiorcy") or (doc.body.get("Kontrahent") or {}).get("Email")
        if not to:
            return envelope(201, "Brak adresu e-mail odbiorcy")
        state.outbox.append({"id": doc.ident, "number": doc.number, "recipient": to})
        return Reply(envelope(0, "Faktura została wysłana.").body, committed=True)

    @api("fakturakraj/ksef/send/<key>.json", methods=("POST",))
    @api("fakturakraj/korekta/ksef/send/<key>.json", methods=("POST",))
    def send_ksef(body: dict[str, Any], key: str) -> Reply:
        doc = state.find(key)
        if doc is None:
            return envelope(201, "Nie znaleziono faktury")
        if set(body) != {"DataWysylki"}:
            return envelope(200, "Niepoprawna struktura obiektu: wymagane tylko DataWysylki")
        fault = state.faults.take("ksef", request.path, "POST")
        if not state.ksef_send(doc, fault["opis"] if fault else None):
            return envelope(201, "Faktura została już wysłana do KSeF")
        return Reply(envelope(0, "Wysłano.").body, committed=True)

    @api("faktury/wplaty/prz_faktura_kraj/<key>.json", methods=("POST",))
    def add_payment(body: dict[str, Any], key: str) -> Reply:
        doc = state.find(key)
        amount = num(body.get("Kwota"))
        if doc is None:
            return envelope(201, "Nie znaleziono faktury")
        if amount is None or amount <= 0 or amount > doc.totals.gross - doc.paid:
            return envelope(201, "Kwota: musi być > 0 i nie większa niż kwota do zapłaty")
        doc.paid += amount
        return Reply(envelope(0, "Wpłata została dodana.").body, committed=True)

    @api("fakturakraj/korekta/<key>.json", methods=("POST",))
    def create_correction(body: dict[str, Any], key: str) -> Reply:
        original = state.find(key)
        if original is None or original.kind != "faktura":
            return envelope(201, "Nie znaleziono faktury korygowanej")
        errors = validate_correction(
            body, original_issue=original.issue, accounting=state.accounting
        )
        if errors:
            state.counts["validation_errors"] += 1
            return envelope(201, "Błędy walidacji: " + "; ".join(errors))
        totals = compute_totals({"LiczOd": original.body["LiczOd"], "Pozycje": body["Pozycje"]})
        doc = state.store("korekta", body, totals, original=original.ident)
        reply = envelope(0, "Faktura korygująca została dodana.", Identyfikator=doc.ident)
        reply.committed = True
        return reply

    @api("abonent/miesiacksiegowy.json", key_name="abonent", methods=("GET", "PUT"))
    def accounting(body: dict[str, Any] | None) -> Reply:
        if body is not None:
            direction = body.get("MiesiacKsiegowy")
            carry = body.get("PrzeniesDaneZPoprzedniegoRoku", False)
            if direction not in ("NAST", "POPRZ") or not isinstance(carry, bool):
                return envelope(201, "MiesiacKsiegowy: dozwolone NAST lub POPRZ")
            year, month = state.accounting
            index = year * 12 + month - 1 + (1 if direction == "NAST" else -1)
            state.accounting = (index // 12, index % 12 + 1)
            return Reply(envelope(0, "Miesiąc księgowy został zmieniony.").body, committed=True)
        year, month = state.accounting
        return envelope(0, "", MiesiacKsiegowy=month, RokKsiegowy=year)

    @api("abonent/limit.json", key_name="abonent")
    def limit(body: None) -> Reply:
        used = state.documents_this_month()
        return envelope(
            0,
            "Informacja o limitach API",
            LimitWykorzystany=used,
            LimitPrzyznany=state.documents_limit,
        )
