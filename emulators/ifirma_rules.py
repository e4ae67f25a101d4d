"""Validation and money rules of the fake iFirma, pure functions only.

The rules follow docs/protocols/ifirma.md (the emulator contract).

Deliberately independent from ``invoicing/``: the emulator plays iFirma, so its checks must not
share code with the client they are meant to catch. Values marked (*) in the protocol are emulator
choices; where this file is stricter than anything documented, the comment says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any


def _words(text: str) -> set[str]:
    return set(text.split())


CENT = Decimal("0.01")
LIMIT = Decimal("100000000")
RATES = {Decimal("0.23"), Decimal("0.08"), Decimal("0.05"), Decimal("0")}
ENUMS = {
    "LiczOd": {"NET", "BRT"},
    "FormatDatySprzedazy": {"DZN", "MSC"},
    "SposobZaplaty": _words("GTK POB PRZ KAR PZA CZK KOM BAR DOT PAL ALG P24 TPA ELE"),
    "RodzajPodpisuOdbiorcy": {"OUP", "UPO", "BPO", "BWO"},
}
CORRECTION_REASONS = _words("OBOW_RABAT ZWR_SPRZ_TOW ZWR_NAB_KWOT ZWR_NAB_ZAL PODW_CENY POMYLKI")
# Field names of the header, position and Kontrahent objects (docs/protocols/ifirma.md).
# Unknown names are refused (Kod 200) so invented fields such as `UwagiNaFakturze` fail offline; whether live iFirma is this strict is unverified (*).
HEADER_FIELDS = _words(
    "Zaplacono ZaplaconoNaDokumencie LiczOd NumerKontaBankowego SplitPayment DataWystawienia "
    "MiejsceWystawienia DataSprzedazy FormatDatySprzedazy TerminPlatnosci SposobZaplaty "
    "NazwaSeriiNumeracji NazwaSzablonu RodzajPodpisuOdbiorcy PodpisOdbiorcy PodpisWystawcy Uwagi "
    "WidocznyNumerGios WidocznyNumerBdo Numer IdentyfikatorKontrahenta PrefiksUEKontrahenta "
    "NIPKontrahenta Kontrahent Pozycje"
)
ITEM_FIELDS = _words(
    "StawkaVat Ilosc CenaJednostkowa NazwaPelna Jednostka TypStawkiVat PKWiU GTU Rabat "
    "PodstawaPrawna StawkaRyczaltu NazwaPelnaObca JednostkaObca"
)
CONTRACTOR_FIELDS = _words(
    "Nazwa Nazwa2 Identyfikator PrefiksUE NIP Ulica KodPocztowy Miejscowosc Kraj KodKraju Email "
    "Telefon OsobaFizyczna AdresZagraniczny JestOdbiorca JestDostawca PodmiotPowiazany"
)
STRING_LIMITS = {"Uwagi": 1000, "MiejsceWystawienia": 50, "NumerKontaBankowego": 28}
CONTRACTOR_LIMITS = {
    "Nazwa2": 150, "Identyfikator": 15, "PrefiksUE": 2, "NIP": 13, "Ulica": 65, "Kraj": 70,
    "KodKraju": 2, "Email": 65, "Telefon": 32,
}  # fmt: skip


@dataclass(frozen=True)
class Totals:
    """Document totals in PLN (2-dp Decimals)."""

    net: Decimal
    vat: Decimal
    gross: Decimal


def q2(value: Decimal) -> Decimal:
    """2-dp, half away from zero (*)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def num(value: Any) -> Decimal | None:
    """A JSON number as Decimal; None for anything else (bools and strings included)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def iso(value: Any) -> date | None:
    """A strict ``YYYY-MM-DD`` string as a date, else None."""
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def deadline(sale: date) -> date:
    """15th of the month after the sale month."""
    return date(sale.year + sale.month // 12, sale.month % 12 + 1, 15)


def unknown_fields(body: Mapping[str, Any]) -> list[str]:
    """Names the domain object does not have (→ Kod 200)."""
    bad = [k for k in body if k not in HEADER_FIELDS]
    kontrahent = body.get("Kontrahent")
    if isinstance(kontrahent, Mapping):
        bad += [f"Kontrahent.{k}" for k in kontrahent if k not in CONTRACTOR_FIELDS]
    items = body.get("Pozycje")
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, Mapping):
            bad += [f"Pozycje[{i}].{k}" for k in item if k not in ITEM_FIELDS]
    return bad


def _text(errors: list[str], obj: Mapping[str, Any], field: str, lo: int, hi: int, at: str = ""):
    value = obj.get(field)
    if value is None and lo == 0:
        return
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        errors.append(f"{at}{field}: wymagany tekst {lo}-{hi} znaków")


def check_items(items: Any, *, allow_zero_qty: bool = False) -> list[str]:
    """Pozycje rules: rate/type pairs, positive quantity and price, name and unit lengths."""
    if not isinstance(items, list) or not items:
        return ["Pozycje: wymagana co najmniej jedna pozycja"]
    errors: list[str] = []
    for i, item in enumerate(items):
        at = f"Pozycje[{i}]."
        if not isinstance(item, Mapping):
            errors.append(f"{at[:-1]}: niepoprawna pozycja")
            continue
        kind, rate = item.get("TypStawkiVat"), item.get("StawkaVat")
        if kind == "PRC":
            if num(rate) not in RATES:
                errors.append(f"{at}StawkaVat: niepoprawna stawka {rate!r}")
        elif kind == "ZW":
            if rate is not None:
                errors.append(f"{at}StawkaVat: dla ZW wymagane null")
            _text(errors, item, "PodstawaPrawna", 1, 500, at)  # exempt needs a legal basis
        else:
            errors.append(f"{at}TypStawkiVat: niepoprawna wartość {kind!r}")
        qty, price = num(item.get("Ilosc")), num(item.get("CenaJednostkowa"))
        if qty is None or not 0 <= qty < 10**12 or (qty == 0 and not allow_zero_qty):
            errors.append(f"{at}Ilosc: wymagana liczba > 0 (do 12 cyfr)")
        if price is None or not 0 < price < LIMIT or price != price.quantize(CENT):
            errors.append(f"{at}CenaJednostkowa: wymagana kwota > 0 (2 miejsca po przecinku)")
        rabat = item.get("Rabat")
        if rabat is not None and (num(rabat) is None or not 0 <= num(rabat) < 100):
            errors.append(f"{at}Rabat: wymagane 0-99")
        _text(errors, item, "NazwaPelna", 1, 300, at)
        _text(errors, item, "Jednostka", 1, 10, at)
    return errors


def _check_header(body: Mapping[str, Any], known_contractor: bool) -> list[str]:
    errors: list[str] = []
    for field in ("Zaplacono", "ZaplaconoNaDokumencie"):
        value = num(body.get(field))
        if value is None or not 0 <= value < LIMIT:
            errors.append(f"{field}: wymagana kwota >= 0")
    for field, allowed in ENUMS.items():
        if not isinstance(body.get(field), str) or body[field] not in allowed:
            errors.append(f"{field}: dozwolone {sorted(allowed)}")
    gios = body.get("WidocznyNumerGios", body.get("WidocznyNumerBdo"))
    if not isinstance(gios, bool):
        errors.append("WidocznyNumerGios: wymagana wartość logiczna")
    if "Numer" not in body or not (body["Numer"] is None or type(body["Numer"]) is int):
        errors.append("Numer: wymagane pole (null = kolejny numer)")
    for field, limit in STRING_LIMITS.items():
        _text(errors, body, field, 0, limit)
    kontrahent = body.get("Kontrahent")
    if isinstance(kontrahent, Mapping):
        _text(errors, kontrahent, "Nazwa", 1, 150, "Kontrahent.")
        _text(errors, kontrahent, "KodPocztowy", 1, 16, "Kontrahent.")
        _text(errors, kontrahent, "Miejscowosc", 1, 65, "Kontrahent.")
        for field, limit in CONTRACTOR_LIMITS.items():
            _text(errors, kontrahent, field, 0, limit, "Kontrahent.")
    elif not known_contractor:
        errors.append("Kontrahent: wymagany (lub NIPKontrahenta/IdentyfikatorKontrahenta)")
    return errors


def check_dates(
    body: Mapping[str, Any], *, accounting: tuple[int, int], last_issue: date | None
) -> list[str]:
    """Date rules: issue ≥ sale, ≥ previous issue, ≤ 15th of next month; sale in accounting month."""
    issued, sold = iso(body.get("DataWystawienia")), iso(body.get("DataSprzedazy"))
    errors = [
        f"{f}: wymagana data RRRR-MM-DD"
        for f, d in (("DataWystawienia", issued), ("DataSprzedazy", sold))
        if d is None
    ]
    due = body.get("TerminPlatnosci")
    if due is not None and (iso(due) is None or (sold and iso(due) < sold)):
        errors.append("TerminPlatnosci: data nie może być wcześniejsza niż DataSprzedazy")
    if issued is None or sold is None:
        return errors
    if issued < sold:
        errors.append("DataWystawienia: nie może być wcześniejsza niż DataSprzedazy")
    if last_issue and issued < last_issue:
        errors.append(f"DataWystawienia: wcześniejsza niż data poprzedniej faktury ({last_issue})")
    if issued > deadline(sold):
        errors.append(
            f"DataWystawienia: później niż {deadline(sold)} (15. dzień następnego miesiąca)"
        )
    if (sold.year, sold.month) != accounting:
        errors.append("DataSprzedazy: Data sprzedaży spoza ustawionego miesiąca księgowego")
    return errors


def compute_totals(body: Mapping[str, Any]) -> Totals:
    """Lines rounded to 2 dp (*), then VAT per rate on the per-rate sum (the summary table).

    BRT: line gross = q2(qty x price after discount), VAT = q2(Σgross x r / (1 + r)).
    NET: line net = q2(qty x price after discount), VAT = q2(Σnet x r).
    """
    by_rate: dict[Decimal, Decimal] = {}
    for item in body["Pozycje"]:
        price = num(item["CenaJednostkowa"]) or Decimal(0)
        discount = num(item.get("Rabat")) or Decimal(0)
        line = q2(num(item["Ilosc"]) * q2(price * (100 - discount) / 100))
        rate = num(item.get("StawkaVat")) or Decimal(0)
        by_rate[rate] = by_rate.get(rate, Decimal(0)) + line
    net = vat = gross = Decimal("0.00")
    for rate, amount in by_rate.items():
        if body["LiczOd"] == "BRT":
            rate_vat = q2(amount * rate / (1 + rate))
            net, vat, gross = net + amount - rate_vat, vat + rate_vat, gross + amount
        else:
            rate_vat = q2(amount * rate)
            net, vat, gross = net + amount, vat + rate_vat, gross + amount + rate_vat
    return Totals(q2(net), q2(vat), q2(gross))


def validate_invoice(
    body: Mapping[str, Any],
    *,
    accounting: tuple[int, int],
    last_issue: date | None,
    known_contractor: bool,
) -> list[str]:
    """All Kod 201 messages for a ``fakturakraj.json`` body (empty list = valid)."""
    errors = _check_header(body, known_contractor) + check_items(body.get("Pozycje"))
    errors += check_dates(body, accounting=accounting, last_issue=last_issue)
    if not errors:
        gross = compute_totals(body).gross
        for field in ("Zaplacono", "ZaplaconoNaDokumencie"):
            if num(body[field]) > gross:
                errors.append(f"{field}: kwota większa niż wartość brutto faktury ({gross})")
    return errors


def validate_correction(
    body: Mapping[str, Any], *, original_issue: date, accounting: tuple[int, int]
) -> list[str]:
    """Kod 201 messages for a ``fakturakraj/korekta/{id}.json`` body (correction rules, partial)."""
    errors = []
    if (
        not isinstance(body.get("PowodKorekty"), str)
        or body["PowodKorekty"] not in CORRECTION_REASONS
    ):
        errors.append(f"PowodKorekty: dozwolone {sorted(CORRECTION_REASONS)}")
    if not isinstance(body.get("SpelnionoWarunki"), bool):
        errors.append("SpelnionoWarunki: wymagana wartość logiczna")
    issued = iso(body.get("DataWystawienia"))
    if issued is None:
        errors.append("DataWystawienia: wymagana data RRRR-MM-DD")
    elif issued < original_issue:
        errors.append("DataWystawienia: wcześniejsza niż data faktury korygowanej")
    elif (issued.year, issued.month) != accounting:
        errors.append("DataWystawienia: spoza ustawionego miesiąca księgowego")
    return errors + check_items(body.get("Pozycje"), allow_zero_qty=True)


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, init 0, no reflection (the KSeF number check digits)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def ksef_number(seller_nip: str, day: date, hex12: str) -> str:
    """``{NIP}-{YYYYMMDD}-{12 hex}-{CRC-8 of the first 32 chars, 2 hex}``: 35 characters."""
    head = f"{seller_nip}-{day:%Y%m%d}-{hex12.upper()}"
    return f"{head}-{crc8(head.encode('ascii')):02X}"


def hmac_sha1_hex(key: bytes, message: bytes) -> str:
    """RFC 2104 HMAC-SHA1 from first principles (deliberately not ``hmac.new``)."""
    if len(key) > 64:
        key = hashlib.sha1(key).digest()  # noqa: S324 - iFirma mandates HMAC-SHA1
    key = key.ljust(64, b"\0")
    inner = hashlib.sha1(bytes(b ^ 0x36 for b in key) + message).digest()  # noqa: S324
    return hashlib.sha1(bytes(b ^ 0x5C for b in key) + inner).hexdigest()  # noqa: S324
