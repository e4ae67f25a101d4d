"""PayNow vectors of docs/protocols/paynow.md that no test next to the code pins yet.

N1-N3, S1, L1, R1-R4 and U1-U3 live beside their code (tests/unit/webhooks/test_paynow_verify.py
and test_paynow_client.py). This file adds the contrast vector for compact bodies and the
create-payment amount rules Kwit enforces before it calls PayNow.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import ValidationError

from invoicing.money import from_minor
from service.api.orders_write import OrderCreateSchema
from webhooks import paynow
from webhooks.errors import SignatureError

SK = "b305b996-bca5-4404-a0b7-2ccea3d2b64b"  # the public sandbox Signature-Key
N2_SIG = "F69sbjUxBX4eFjfUal/Y9XGREbfaRjh/zdq9j4MWeHM="  # valid only for the pretty N2 body
COMPACT_BODY = (
    b'{"paymentId":"NOLV-8F9-08K-WGD","externalId":"12345","status":"CONFIRMED",'
    b'"modifiedAt":"2018-12-12T13:24:52"}'
)
COMPACT_SIG = "xtiaCua1Y+uBkPA2hl48m6I5kqn6bHVa9KpNvtMyMcQ="


# --- "Test vectors", contrast: a compact body has a signature of its own ------------------------


def test_compact_body_reproduces_its_own_signature() -> None:
    assert paynow.sign(COMPACT_BODY, SK) == COMPACT_SIG
    assert paynow.verify(COMPACT_BODY, COMPACT_SIG, [SK])["externalId"] == "12345"


def test_the_documented_n2_signature_does_not_verify_a_compact_body() -> None:
    # A third-party test claims it does; only N2's exact 4-space pretty bytes give F69sbj….
    with pytest.raises(SignatureError) as caught:
        paynow.verify(COMPACT_BODY, N2_SIG, [SK])
    assert caught.value.reason == "mismatch"


# --- "Create-payment rules": amounts in grosze, 1.00 to 1,000,000.00 PLN ------------------------


def test_the_docs_amount_example_is_in_grosze() -> None:
    assert from_minor(45671) == Decimal("456.71")


def order_body(total_minor: int) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "external_ref": "shop-1",
            "customer_ref": "cust-1",
            "currency": "PLN",
            "provider": "paynow",
            "items": [
                {"name": "Plan", "quantity": 1, "unit_gross_minor": total_minor, "vat_rate": "23"}
            ],
            "buyer": {
                "name": "Jan Kowalski",
                "email": "jan.kowalski@example.pl",
                "address": {"line1": "Prosta 1", "postal_code": "00-001", "city": "Warszawa"},
            },
        }
    )


@pytest.mark.parametrize("total_minor", [100, 45671, 100_000_000])
def test_paynow_order_totals_within_the_limits_are_accepted(total_minor: int) -> None:
    loaded = OrderCreateSchema().load(order_body(total_minor))
    assert loaded["items"][0]["unit_gross_minor"] == total_minor


@pytest.mark.parametrize("total_minor", [99, 100_000_001])
def test_paynow_order_totals_outside_the_limits_are_refused(total_minor: int) -> None:
    with pytest.raises(ValidationError) as caught:
        OrderCreateSchema().load(order_body(total_minor))
    assert "items" in caught.value.messages
