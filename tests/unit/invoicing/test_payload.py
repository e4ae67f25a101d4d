"""Invoice payload builder: BRT totals to the grosz, B2B/B2C, VAT kinds, Warsaw dates."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.money import dumps, from_minor, split_gross, to_minor
from invoicing.payload import (
    InvoiceLine,
    PayloadError,
    RateTotals,
    build_invoice,
    issue_deadline,
    marker_for,
    matches_marker,
)

PAID = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BUYER = {
    "name": "Jan Kowalski",
    "email": "jan@example.pl",
    "nip": None,
    "tax_id": None,
    "line1": "Prosta 1/2",
    "line2": None,
    "postal_code": "00-001",
    "city": "Warszawa",
    "country": "PL",
}
COMPANY = {**BUYER, "name": "Kwit Sp. z o.o.", "nip": "PL 526-104-08-28"}


def build(lines, *, buyer=BUYER, paid_at=PAID, issue_date=date(2026, 11, 23), **kw):
    gross = kw.pop("gross_minor", None)
    if gross is None:
        gross = sum(ln.quantity * ln.unit_gross_minor for ln in lines)
    args = {"order_id": "ord-1", "currency": "PLN", "payment_ref": "PAY-7f3a", "provider": "paynow"}
    args.update(kw)
    return build_invoice(
        lines=lines, gross_minor=gross, paid_at=paid_at, buyer=buyer, issue_date=issue_date, **args
    )


def paid_total_minor(payload: dict) -> int:
    return sum(to_minor(p["CenaJednostkowa"]) * p["Ilosc"] for p in payload["Pozycje"])


def test_b2c_payload_matches_the_protocol_example() -> None:
    built = build([InvoiceLine("Subskrypcja listopad", 1, 12300, "23")])
    p = built.payload
    assert {k: p[k] for k in p if k not in ("Pozycje", "Kontrahent")} == {
        "Zaplacono": Decimal("123.00"),
        "ZaplaconoNaDokumencie": Decimal("123.00"),
        "LiczOd": "BRT",
        "DataWystawienia": "2026-11-23",
        "DataSprzedazy": "2026-11-23",
        "FormatDatySprzedazy": "DZN",
        "TerminPlatnosci": "2026-11-23",
        "SposobZaplaty": "ELE",
        "RodzajPodpisuOdbiorcy": "BPO",
        "WidocznyNumerGios": False,
        "Numer": None,
        "Uwagi": "Kwit order ord-1, payment PAY-7f3a",
    }
    assert p["Pozycje"] == [
        {
            "StawkaVat": Decimal("0.23"),
            "Ilosc": 1,
            "CenaJednostkowa": Decimal("123.00"),
            "NazwaPelna": "Subskrypcja listopad",
            "Jednostka": "szt.",
            "TypStawkiVat": "PRC",
        }
    ]
    assert p["Kontrahent"] == {
        "Nazwa": "Jan Kowalski",
        "Identyfikator": None,
        "Ulica": "Prosta 1/2",
        "KodPocztowy": "00-001",
        "Miejscowosc": "Warszawa",
        "Kraj": "Polska",
        "KodKraju": "PL",
        "Email": "jan@example.pl",
        "OsobaFizyczna": True,
    }
    assert built.totals == {"23": RateTotals(net_minor=10000, vat_minor=2300, gross_minor=12300)}
    assert (built.sale_date, built.issue_date, built.marker) == (
        date(2026, 11, 23),
        date(2026, 11, 23),
        "Kwit order ord-1",
    )


def test_b2b_uses_the_digits_of_a_valid_nip() -> None:
    k = build([InvoiceLine("Plan Pro", 1, 12300, "23")], buyer=COMPANY).payload["Kontrahent"]
    assert (k["NIP"], k["OsobaFizyczna"], k["Nazwa"]) == ("5261040828", False, "Kwit Sp. z o.o.")


def test_tax_id_field_is_used_when_nip_is_absent() -> None:
    buyer = {**BUYER, "tax_id": "PL5261040828"}
    assert build([InvoiceLine("A", 1, 100, "23")], buyer=buyer).payload["Kontrahent"]["NIP"] == (
        "5261040828"
    )


def test_invalid_nip_falls_back_to_a_consumer_invoice() -> None:
    k = build([InvoiceLine("A", 1, 100, "23")], buyer={**BUYER, "nip": "5261040827"}).payload
    assert "NIP" not in k["Kontrahent"]
    assert k["Kontrahent"]["OsobaFizyczna"] is True


def test_stripe_is_card_paynow_is_electronic() -> None:
    line = [InvoiceLine("A", 1, 100, "23")]
    assert build(line, provider="stripe").payload["SposobZaplaty"] == "KAR"
    assert build(line, provider="paynow").payload["SposobZaplaty"] == "ELE"


def test_mixed_rates_with_exemption() -> None:
    lines = [
        InvoiceLine("Kurs online", 2, 12300, "23"),
        InvoiceLine("E-book", 1, 5400, "8"),
        InvoiceLine("Szkolenie", 1, 10000, "zw"),
    ]
    built = build(lines, exemption_basis="Art. 43 ust. 1 pkt 29 lit. c")
    items = built.payload["Pozycje"]
    assert [(i["StawkaVat"], i["TypStawkiVat"]) for i in items] == [
        (Decimal("0.23"), "PRC"),
        (Decimal("0.08"), "PRC"),
        (None, "ZW"),
    ]
    assert items[2]["PodstawaPrawna"] == "Art. 43 ust. 1 pkt 29 lit. c"
    assert "PodstawaPrawna" not in items[0]
    assert built.totals == {
        "23": RateTotals(20000, 4600, 24600),
        "8": RateTotals(5000, 400, 5400),
        "zw": RateTotals(10000, 0, 10000),
    }
    assert built.gross_minor == paid_total_minor(built.payload) == 40000


def test_exempt_line_gets_the_default_legal_basis() -> None:
    item = build([InvoiceLine("Kurs", 1, 5000, "zw")]).payload["Pozycje"][0]
    assert (item["StawkaVat"], item["TypStawkiVat"], item["PodstawaPrawna"]) == (
        None,
        "ZW",
        "Art. 113 ust. 1",
    )


def test_np_line_is_not_subject_to_vat() -> None:
    built = build([InvoiceLine("Usługa poza PL", 1, 5000, "np")])
    item = built.payload["Pozycje"][0]
    assert (item["StawkaVat"], item["TypStawkiVat"]) == (None, "NP")
    assert "PodstawaPrawna" not in item
    assert built.totals == {"np": RateTotals(5000, 0, 5000)}


def test_per_rate_vat_differs_from_per_line_rounding_but_gross_is_exact() -> None:
    lines = [InvoiceLine(f"Dodatek {i}", 1, 100, "23") for i in range(3)]  # 3 x 1.00 PLN
    built = build(lines)
    per_line_vat = sum(split_gross(100, Decimal("0.23"))[1] for _ in lines)  # 3 x 0.19
    assert per_line_vat == 57
    assert built.totals["23"] == RateTotals(net_minor=244, vat_minor=56, gross_minor=300)
    assert paid_total_minor(built.payload) == 300 == built.gross_minor
    assert built.payload["Zaplacono"] == Decimal("3.00")


def test_payment_late_in_the_utc_evening_is_sold_next_day_in_warsaw() -> None:
    paid = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 00:30 on 1 December in Warsaw (CET)
    built = build([InvoiceLine("A", 1, 100, "23")], paid_at=paid, issue_date=date(2026, 12, 1))
    assert built.payload["DataSprzedazy"] == "2026-12-01"
    assert built.sale_date == date(2026, 12, 1)


def test_summer_time_is_two_hours_ahead() -> None:
    paid = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)  # 00:30 CEST on 1 July
    assert build(
        [InvoiceLine("A", 1, 100, "23")], paid_at=paid, issue_date=date(2026, 7, 1)
    ).sale_date == date(2026, 7, 1)


def test_issue_date_bounds() -> None:
    line = [InvoiceLine("A", 1, 100, "23")]
    assert build(line, issue_date=date(2026, 12, 15)).issue_date == date(2026, 12, 15)
    with pytest.raises(PayloadError, match="after 2026-12-15"):
        build(line, issue_date=date(2026, 12, 16))
    with pytest.raises(PayloadError, match="before the sale date"):
        build(line, issue_date=date(2026, 11, 22))


def test_issue_deadline_crosses_the_year() -> None:
    assert issue_deadline(date(2026, 12, 31)) == date(2027, 1, 15)
    assert issue_deadline(date(2026, 1, 1)) == date(2026, 2, 15)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "EUR"}, "PLN only"),
        ({"gross_minor": 101}, "add up to 100"),
        ({"paid_at": datetime(2026, 11, 23, 10, 0)}, "timezone-aware"),
        ({"provider": "przelewy24"}, "unknown payment provider"),
        ({"buyer": {**BUYER, "city": " "}}, "city"),
    ],
)
def test_unusable_input_is_refused(change: dict, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        build([InvoiceLine("A", 1, 100, "23")], **change)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vat_rate": "22"}, "unsupported VAT rate"),
        ({"quantity": 0}, "positive"),
        ({"unit_gross_minor": -5}, "positive"),
        ({"name": " "}, "1-300"),
    ],
)
def test_bad_lines_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        InvoiceLine(
            **{"name": "A", "quantity": 1, "unit_gross_minor": 100, "vat_rate": "23", **fields}
        )


def test_lines_may_come_as_stored_mappings() -> None:
    built = build(
        [{"name": "Plan", "qty": 2, "unit_gross": 500, "vat_rate": "8%"}], gross_minor=1000
    )
    assert built.payload["Pozycje"][0]["StawkaVat"] == Decimal("0.08")
    assert built.totals["8"].gross_minor == 1000


def test_long_names_are_clipped_and_long_emails_dropped() -> None:
    buyer = {**BUYER, "name": "Ż" * 149 + "ółw", "email": "x" * 60 + "@example.pl"}
    k = build([InvoiceLine("A", 1, 100, "23")], buyer=buyer).payload["Kontrahent"]
    assert k["Nazwa"] == "Ż" * 149 + "ó"
    assert "Email" not in k


def test_payload_serialises_money_as_json_numbers() -> None:
    raw = dumps(build([InvoiceLine("Żółw", 1, 12300, "23")]).payload)
    assert b'"Zaplacono": 123.00' in raw
    assert b'"StawkaVat": 0.23' in raw
    assert "Żółw".encode() in raw
    assert json.loads(raw)["Pozycje"][0]["CenaJednostkowa"] == 123.0


def test_marker_matching() -> None:
    uwagi = build([InvoiceLine("A", 1, 100, "23")], order_id="A1").payload["Uwagi"]
    assert marker_for("A1") == "Kwit order A1"
    assert matches_marker({"Uwagi": uwagi}, "A1")
    assert matches_marker({"response": {"Kod": 0, "Uwagi": uwagi}}, "A1")
    assert matches_marker({"response": {"Kod": 0, "Wynik": {"Uwagi": uwagi}}}, "A1")
    assert not matches_marker({"Uwagi": uwagi}, "A")
    assert not matches_marker({"Uwagi": "Kwit order A12, payment P"}, "A1")
    assert not matches_marker({"PelnyNumer": "1/11/2026"}, "A1")


LINES = st.lists(
    st.builds(
        InvoiceLine,
        name=st.text(
            st.characters(codec="utf-8", exclude_categories=("C",)), min_size=1, max_size=30
        ).filter(str.strip),
        quantity=st.integers(1, 50),
        unit_gross_minor=st.integers(1, 2_000_000),
        vat_rate=st.sampled_from(["23", "8", "5", "0", "zw", "np"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None, database=None)
@given(LINES)
def test_property_totals_equal_the_charged_amount(lines: list[InvoiceLine]) -> None:
    gross = sum(ln.gross_minor for ln in lines)
    built = build(lines, gross_minor=gross)
    assert paid_total_minor(built.payload) == gross
    assert built.payload["Zaplacono"] == built.payload["ZaplaconoNaDokumencie"] == from_minor(gross)
    assert sum(t.gross_minor for t in built.totals.values()) == gross
    assert all(t.net_minor + t.vat_minor == t.gross_minor for t in built.totals.values())
