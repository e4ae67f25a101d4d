"""Pure builder for iFirma ``fakturakraj.json`` payloads (refund corrections: correction.py).

The facts are in docs/protocols/ifirma.md (the invoice payload, date rules).
Amounts come in as integer grosze and go out as 2-dp ``Decimal`` values; serialise the payload
with :func:`invoicing.money.dumps`, which renders those Decimals as JSON numbers.

Choices worth knowing:
- ``LiczOd: "BRT"`` with gross unit prices, so the invoice total equals the charged amount to the
  grosz (net/VAT are derived from gross; iFirma would otherwise round per line from net).
- ``SposobZaplaty``: PayNow → ``"ELE"`` (electronic payment through an online gateway); Stripe →
  ``"KAR"`` (card). Stripe may also carry BLIK/P24, but Kwit only knows "Stripe", and card is what
  Stripe mostly is; change ``PAYMENT_METHODS`` if the accountant prefers ``"ELE"`` for both.
- Totals per VAT rate: VAT = round_half_up(Σ gross of the rate x r / (1 + r)), net = gross - VAT
  (summary computed per rate, not per line; they can differ by a grosz — see the tests).
- B2B only for a valid Polish NIP (``stdnum.pl.nip``); anything else is issued to a consumer
  (``OsobaFizyczna: true``). Validate NIPs when the order is registered, not here.
- ``"np"`` lines are sent as ``TypStawkiVat: "NP"`` with ``StawkaVat: null``. That value is
  **unverified** for ``fakturakraj`` (docs/protocols/ifirma.md, invoice positions) and the
  emulator rejects it; expect Kod 201 live.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from stdnum.pl import nip as pl_nip

from invoicing.money import from_minor, split_gross
from models import VatRate

__all__ = [
    "PAYMENT_METHODS",
    "VAT_RATES",
    "WARSAW",
    "BuiltInvoice",
    "InvoiceLine",
    "PayloadError",
    "RateTotals",
    "build_invoice",
    "issue_deadline",
    "marker_for",
    "matches_marker",
    "rate_totals",
    "warsaw_date",
]

WARSAW = ZoneInfo("Europe/Warsaw")
# The VAT fraction of each rate; exempt and out-of-scope lines carry no VAT at all.
VAT_RATES: dict[str, Decimal | None] = {
    VatRate.STANDARD: Decimal("0.23"),
    VatRate.REDUCED_8: Decimal("0.08"),
    VatRate.REDUCED_5: Decimal("0.05"),
    VatRate.ZERO: Decimal("0.00"),
    VatRate.EXEMPT: None,
    VatRate.NOT_SUBJECT: None,
}
PAYMENT_METHODS = {"paynow": "ELE", "stripe": "KAR"}
DEFAULT_EXEMPTION_BASIS = "Art. 113 ust. 1"
# Polish names for the `Kraj` field (a country *name*, ≤70); unknown codes send only `KodKraju`.
COUNTRY_NAMES = {
    "PL": "Polska", "DE": "Niemcy", "CZ": "Czechy", "SK": "Słowacja", "LT": "Litwa",
    "UA": "Ukraina", "GB": "Wielka Brytania", "US": "Stany Zjednoczone", "FR": "Francja",
    "NL": "Holandia", "AT": "Austria", "IT": "Włochy", "ES": "Hiszpania", "IE": "Irlandia",
}  # fmt: skip


class PayloadError(ValueError):
    """The order/payment data cannot become a valid iFirma invoice (a human must look)."""


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice position, priced in gross grosze per unit."""

    name: str
    quantity: int
    unit_gross_minor: int
    vat_rate: str
    unit: str = "szt."

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 300:
            raise PayloadError(f"line name must be 1-300 characters: {self.name[:40]!r}")
        for value in (self.quantity, self.unit_gross_minor):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise PayloadError("line quantity and unit price must be positive ints")
        if self.vat_rate not in VAT_RATES:
            raise PayloadError(f"unsupported VAT rate {self.vat_rate!r}; use one of {[*VAT_RATES]}")
        if not 1 <= len(self.unit) <= 10:
            raise PayloadError("unit must be 1-10 characters")

    @property
    def gross_minor(self) -> int:
        """Line total in grosze."""
        return self.quantity * self.unit_gross_minor

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> InvoiceLine:
        """Accept the stored order-line shape (``qty``/``unit_gross`` aliases allowed)."""
        rate = str(m["vat_rate"]).strip().lower().removesuffix("%")
        return cls(
            name=str(m["name"]),
            quantity=m.get("quantity", m.get("qty")),
            unit_gross_minor=m.get("unit_gross_minor", m.get("unit_gross")),
            vat_rate=rate,
            unit=str(m.get("unit") or "szt."),
        )


@dataclass(frozen=True)
class RateTotals:
    """Net / VAT / gross for one VAT rate, in grosze."""

    net_minor: int
    vat_minor: int
    gross_minor: int


@dataclass(frozen=True)
class BuiltInvoice:
    """A ready ``fakturakraj.json`` body plus what Kwit stores about it."""

    payload: dict[str, Any]
    totals: dict[str, RateTotals]
    sale_date: date
    issue_date: date
    marker: str

    @property
    def gross_minor(self) -> int:
        """Invoice total in grosze."""
        return sum(t.gross_minor for t in self.totals.values())


def marker_for(order_id: str) -> str:
    """The searchable part of ``Uwagi`` that ties an iFirma invoice to a Kwit order."""
    return f"Kwit order {order_id}"


def matches_marker(invoice_json: Mapping[str, Any], order_id: str) -> bool:
    """True when the invoice (GET shape, wrapped or not) carries this order's marker.

    The character after the id must not continue it, so order ``A1`` never matches ``A12``.
    """
    inner: Any = invoice_json.get("response", invoice_json)
    if isinstance(inner, Mapping) and isinstance(inner.get("Wynik"), Mapping):
        inner = inner["Wynik"]
    uwagi = inner.get("Uwagi") if isinstance(inner, Mapping) else None
    if not isinstance(uwagi, str):
        return False
    return re.search(re.escape(marker_for(order_id)) + r"(?![\w-])", uwagi) is not None


def issue_deadline(sale_date: date) -> date:
    """The 15th of the month after the sale month: the latest legal issue date."""
    return date(sale_date.year + sale_date.month // 12, sale_date.month % 12 + 1, 15)


def warsaw_date(moment: datetime, what: str) -> date:
    """The calendar day of `moment` in Warsaw; PayloadError for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PayloadError(f"{what} must be timezone-aware")
    return moment.astimezone(WARSAW).date()


def rate_totals(items: Sequence[tuple[str, int]]) -> dict[str, RateTotals]:
    """Per-rate totals from (rate, line gross) pairs, VAT computed on the per-rate gross sum."""
    gross_by_rate: dict[str, int] = {}
    for rate, gross in items:
        gross_by_rate[rate] = gross_by_rate.get(rate, 0) + gross
    totals = {}
    for rate, gross in gross_by_rate.items():
        fraction = VAT_RATES[rate]
        net, vat = split_gross(gross, fraction) if fraction is not None else (gross, 0)
        totals[rate] = RateTotals(net_minor=net, vat_minor=vat, gross_minor=gross)
    return totals


def _position(line: InvoiceLine, basis: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "StawkaVat": VAT_RATES[line.vat_rate],
        "Ilosc": line.quantity,
        "CenaJednostkowa": from_minor(line.unit_gross_minor),
        "NazwaPelna": line.name,
        "Jednostka": line.unit,
        "TypStawkiVat": {"zw": "ZW", "np": "NP"}.get(line.vat_rate, "PRC"),
    }
    if line.vat_rate == "zw":
        item["PodstawaPrawna"] = basis  # required by iFirma for exempt positions
    return item


def _clip(text: str | None, limit: int) -> str:
    """NFC-normalise, collapse whitespace, cut to `limit` without leaving a dangling accent."""
    clean = " ".join(unicodedata.normalize("NFC", text or "").split())
    cut = clean[:limit]
    while cut and len(clean) > limit and unicodedata.combining(cut[-1]):
        cut = cut[:-1]
    return cut.rstrip()


def _valid_nip(buyer: Mapping[str, Any]) -> str | None:
    for raw in (buyer.get("nip"), buyer.get("tax_id")):
        if raw:
            digits = pl_nip.compact(str(raw)).upper().removeprefix("PL")
            if pl_nip.is_valid(digits):
                return digits
    return None


def _contractor(buyer: Mapping[str, Any]) -> dict[str, Any]:
    name = _clip(buyer.get("name"), 150)
    postal, city = _clip(buyer.get("postal_code"), 16), _clip(buyer.get("city"), 65)
    if not name or not postal or not city:
        raise PayloadError("buyer name, postal_code and city are required on a VAT invoice")
    country = (buyer.get("country") or "PL").strip().upper()
    street = ", ".join(
        p for p in (_clip(buyer.get("line1"), 65), _clip(buyer.get("line2"), 65)) if p
    )
    k: dict[str, Any] = {"Nazwa": name, "Identyfikator": None}
    nip = _valid_nip(buyer)
    if nip:
        k["NIP"] = nip
    if street:
        k["Ulica"] = _clip(street, 65)
    k.update({"KodPocztowy": postal, "Miejscowosc": city})
    if country in COUNTRY_NAMES:
        k["Kraj"] = COUNTRY_NAMES[country]
    k["KodKraju"] = "EL" if country == "GR" else country  # iFirma wants EL for Greece
    email = (buyer.get("email") or "").strip()
    if email and len(email) <= 65:  # a truncated address is worse than none
        k["Email"] = email
    k["OsobaFizyczna"] = nip is None
    return k


def _check_issue_date(issue_date: date, sale_date: date) -> None:
    if issue_date < sale_date:
        raise PayloadError(f"issue date {issue_date} is before the sale date {sale_date}")
    if issue_date > issue_deadline(sale_date):
        raise PayloadError(
            f"issue date {issue_date} is after {issue_deadline(sale_date)}, the 15th of the month "
            f"after the sale ({sale_date}); iFirma will refuse it — issue this one by hand"
        )


def build_invoice(
    *,
    order_id: str,
    lines: Sequence[InvoiceLine | Mapping[str, Any]],
    gross_minor: int,
    currency: str,
    paid_at: datetime,
    buyer: Mapping[str, Any],
    payment_ref: str,
    provider: str,
    issue_date: date | None = None,
    exemption_basis: str = DEFAULT_EXEMPTION_BASIS,
) -> BuiltInvoice:
    """Build the ``fakturakraj.json`` body for a paid order.

    ``paid_at`` must be aware; the sale date is its calendar date in Europe/Warsaw.
    ``issue_date`` defaults to today in Warsaw. Raises :class:`PayloadError` when the lines do
    not add up to ``gross_minor``, the currency is not PLN, or the dates break iFirma's date
    rules (the issue date within the sale date and the 15th of the next month).
    """
    if currency.upper() != "PLN":
        raise PayloadError(f"fakturakraj supports PLN only, got {currency!r} (needs fakturawaluta)")
    if provider not in PAYMENT_METHODS:
        raise PayloadError(f"unknown payment provider {provider!r}")
    parsed = [ln if isinstance(ln, InvoiceLine) else InvoiceLine.from_mapping(ln) for ln in lines]
    if not parsed:
        raise PayloadError("an invoice needs at least one line")
    line_sum = sum(ln.gross_minor for ln in parsed)
    if line_sum != gross_minor:
        raise PayloadError(f"lines add up to {line_sum} grosze but {gross_minor} was charged")
    sale_date = warsaw_date(paid_at, "paid_at")
    if issue_date is None:
        issue_date = datetime.now(WARSAW).date()
    _check_issue_date(issue_date, sale_date)
    uwagi = f"{marker_for(order_id)}, payment {payment_ref}"
    if len(uwagi) > 1000:
        raise PayloadError("order/payment reference too long for Uwagi (1000 chars)")
    paid = from_minor(gross_minor)
    payload: dict[str, Any] = {
        "Zaplacono": paid,
        "ZaplaconoNaDokumencie": paid,
        "LiczOd": "BRT",
        "DataWystawienia": issue_date.isoformat(),
        "DataSprzedazy": sale_date.isoformat(),
        "FormatDatySprzedazy": "DZN",
        "TerminPlatnosci": sale_date.isoformat(),
        "SposobZaplaty": PAYMENT_METHODS[provider],
        "RodzajPodpisuOdbiorcy": "BPO",
        "WidocznyNumerGios": False,
        "Numer": None,
        "Uwagi": uwagi,
        "Pozycje": [_position(ln, exemption_basis) for ln in parsed],
        "Kontrahent": _contractor(buyer),
    }
    totals = rate_totals([(ln.vat_rate, ln.gross_minor) for ln in parsed])
    return BuiltInvoice(payload, totals, sale_date, issue_date, marker_for(order_id))
