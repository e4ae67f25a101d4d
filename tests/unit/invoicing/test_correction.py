"""Refund correction builder: "should be" positions, exact to the grosz, signed differences."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from invoicing.correction import build_correction
from invoicing.money import to_minor
from invoicing.payload import InvoiceLine, PayloadError, RateTotals, build_invoice, matches_marker

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


def paid_total_minor(payload: dict) -> int:
    return sum(to_minor(p["CenaJednostkowa"]) * p["Ilosc"] for p in payload["Pozycje"])


def build(lines):
    gross = sum(ln.quantity * ln.unit_gross_minor for ln in lines)
    return build_invoice(
        order_id="ord-1",
        currency="PLN",
        payment_ref="PAY-7f3a",
        provider="paynow",
        lines=lines,
        gross_minor=gross,
        paid_at=PAID,
        buyer=BUYER,
        issue_date=date(2026, 11, 23),
    )


def original(lines):
    return build(lines).payload


def test_full_refund_zeroes_every_position() -> None:
    payload = original([InvoiceLine("A", 2, 12300, "23"), InvoiceLine("B", 1, 5000, "zw")])
    c = build_correction(
        original_payload=payload,
        order_id="ord-1",
        refund_ref="re_1",
        refund_minor=29600,
        refunded_at=datetime(2026, 11, 25, 9, tzinfo=UTC),
        issue_date=date(2026, 11, 25),
    )
    assert [(i["Ilosc"], i["CenaJednostkowa"]) for i in c.payload["Pozycje"]] == [
        (0, Decimal("123.00")),
        (0, Decimal("50.00")),
    ]
    assert c.payload["Pozycje"][1]["PodstawaPrawna"] == "Art. 113 ust. 1"
    assert c.totals == {"23": RateTotals(0, 0, 0), "zw": RateTotals(0, 0, 0)}
    assert c.difference == {
        "23": RateTotals(-20000, -4600, -24600),
        "zw": RateTotals(-5000, 0, -5000),
    }
    assert (c.payload["PowodKorekty"], c.payload["SpelnionoWarunki"]) == ("ZWR_NAB_KWOT", True)
    assert c.payload["DataWystawienia"] == "2026-11-25"
    assert not matches_marker({"Uwagi": c.payload["Uwagi"]}, "ord-1")


def test_partial_refund_keeps_quantity_when_it_divides() -> None:
    c = build_correction(
        original_payload=original([InvoiceLine("A", 2, 12300, "23")]),
        order_id="o",
        refund_ref="r",
        refund_minor=4600,
        refunded_at=PAID,
        issue_date=date(2026, 11, 23),
    )
    assert [(i["Ilosc"], i["CenaJednostkowa"]) for i in c.payload["Pozycje"]] == [
        (2, Decimal("100.00"))
    ]
    assert c.totals["23"] == RateTotals(16260, 3740, 20000)


def test_partial_refund_is_spread_and_stays_exact() -> None:
    lines = [InvoiceLine("A", 3, 1000, "23"), InvoiceLine("B", 1, 1001, "8")]
    c = build_correction(
        original_payload=original(lines),
        order_id="o",
        refund_ref="r",
        refund_minor=1001,
        refunded_at=PAID,
        issue_date=date(2026, 11, 23),
    )
    assert sum(t.gross_minor for t in c.totals.values()) == 4001 - 1001
    assert paid_total_minor(c.payload) == 3000
    assert c.payload["Pozycje"][0]["Ilosc"] == 1  # 3 x 10.00 - 7.51 does not divide by 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"refund_minor": 12301}, "must be >0"),
        ({"issue_date": date(2026, 11, 22)}, "before"),
        ({"reason": "BO_TAK"}, "unknown correction reason"),
    ],
)
def test_correction_input_is_checked(change: dict, message: str) -> None:
    args = {
        "original_payload": original([InvoiceLine("A", 1, 12300, "23")]),
        "order_id": "o",
        "refund_ref": "r",
        "refund_minor": 100,
        "refunded_at": PAID,
        "issue_date": date(2026, 11, 23),
    }
    with pytest.raises(PayloadError, match=message):
        build_correction(**{**args, **change})
