"""Worked examples of docs/protocols/crossborder.md, as far as Kwit implements them today.

Kwit issues domestic PLN invoices only (fakturakraj). X6 is such an invoice and is tested whole.
Of X2 and X3 only the VAT arithmetic is Kwit's today: the split of a gross amount and the
rounding rule of VAT Act art. 106e ust. 11. The NBP conversion, fakturawaluta and OSS are not
built, so nothing here converts a currency or picks a document kind.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from invoicing.money import round_half_up, split_gross
from invoicing.payload import InvoiceLine, RateTotals, build_invoice

CONSUMER = {
    "name": "Jan Kowalski",
    "email": None,
    "nip": None,
    "tax_id": None,
    "line1": "Prosta 1",
    "line2": None,
    "postal_code": "00-001",
    "city": "Warszawa",
    "country": "PL",
}


def consumer_invoice(buyer: dict, gross_minor: int = 4900):
    return build_invoice(
        order_id="ord-x6",
        lines=[InvoiceLine("Plan Pro", 1, gross_minor, "23")],
        gross_minor=gross_minor,
        currency="PLN",
        paid_at=datetime(2026, 11, 16, 9, 0, tzinfo=UTC),
        buyer=buyer,
        payment_ref="pay-x6",
        provider="paynow",
        issue_date=date(2026, 11, 16),
    )


# --- "Worked examples", X6: a Polish consumer pays 49.00 PLN gross at 23 % ----------------------


def test_x6_polish_consumer_gets_a_domestic_invoice_with_9_16_vat() -> None:
    built = consumer_invoice(CONSUMER)
    assert built.totals == {"23": RateTotals(net_minor=3984, vat_minor=916, gross_minor=4900)}
    assert built.payload["Zaplacono"] == Decimal("49.00")
    kontrahent = built.payload["Kontrahent"]
    assert kontrahent["OsobaFizyczna"] is True
    assert "NIP" not in kontrahent


# --- X2 and X3: the VAT split of a gross amount (the currency plays no part in it) --------------


@pytest.mark.parametrize(
    ("gross_minor", "rate", "net_minor", "vat_minor"),
    [
        pytest.param(12300, "0.23", 10000, 2300, id="x2-123.00-at-23"),
        pytest.param(1190, "0.19", 1000, 190, id="x3-11.90-at-19"),
    ],
)
def test_vat_is_split_out_of_the_gross(
    gross_minor: int, rate: str, net_minor: int, vat_minor: int
) -> None:
    assert split_gross(gross_minor, Decimal(rate)) == (net_minor, vat_minor)


# --- "Rounding": half a grosz and more rounds up (art. 106e ust. 11) ----------------------------


@pytest.mark.parametrize(
    ("amount", "rate", "pln"),
    [
        pytest.param("23.00", "4.2385", "97.49", id="x2-97.4855"),
        pytest.param("1.90", "4.2317", "8.04", id="x3-8.04023"),
    ],
)
def test_pln_amounts_round_half_up_to_the_grosz(amount: str, rate: str, pln: str) -> None:
    assert round_half_up(Decimal(amount) * Decimal(rate)) == Decimal(pln)


# --- "Buyer kinds": Greece is EL in EU VAT, and on the iFirma contractor ------------------------


def test_a_greek_address_is_sent_with_country_code_el() -> None:
    buyer = {**CONSUMER, "country": "GR", "postal_code": "105 57", "city": "Athina"}
    assert consumer_invoice(buyer).payload["Kontrahent"]["KodKraju"] == "EL"
