"""Legal holds: which records each scope covers, malformed holds, corrections and batches."""

from datetime import date

import pytest

from compliance.holds import (
    LegalHold,
    RecordRef,
    held_by,
    held_ids,
    hold_covers,
    invoice_ref,
)
from compliance.purge_plan import select_expired
from models import InvoiceKind

D = date


def test_hold_covers_each_scope():
    payment = RecordRef(
        "payment",
        "pay-1",
        D(2030, 1, 1),
        customer_ref="cus_1",
        order_id="ord-1",
        invoice_id="inv-1",
    )
    order = RecordRef("order", "ord-1", D(2030, 1, 1))
    correction = RecordRef("correction_invoice", "cor-1", D(2030, 1, 1), invoice_id="inv-1")
    assert hold_covers("all", None, payment)
    assert hold_covers("customer_ref", "cus_1", payment)
    assert not hold_covers("customer_ref", "cus_2", payment)
    assert hold_covers("order", "ord-1", payment)
    assert hold_covers("order", "ord-1", order)
    assert not hold_covers("order", "ord-2", order)
    assert hold_covers("invoice", "inv-1", correction)
    assert hold_covers("invoice", "cor-1", correction)
    assert not hold_covers("invoice", "inv-1", order)


@pytest.mark.parametrize(("scope", "value"), [("tenant", "x"), ("order", None), ("invoice", "")])
def test_malformed_hold_stops_the_purge(scope, value):
    ref = RecordRef("order", "ord-1", D(2020, 1, 1))
    with pytest.raises(ValueError, match="legal hold"):
        select_expired([ref], today=D(2030, 1, 1), held=held_by([LegalHold(scope, value)]))


def test_a_correction_points_at_its_original_even_before_it_is_built():
    built = invoice_ref(
        "cor-1",
        InvoiceKind.CORRECTION,
        D(2033, 12, 31),
        order_id="ord-1",
        customer_ref="cus_1",
        corrects_invoice_id="inv-1",
        sale_invoice_id="inv-1",
    )
    pending = invoice_ref(
        "cor-2",
        InvoiceKind.CORRECTION,
        None,
        order_id="ord-1",
        customer_ref="cus_1",
        corrects_invoice_id=None,  # filled in when the correction is built
        sale_invoice_id="inv-1",
    )
    sale = invoice_ref(
        "inv-1",
        InvoiceKind.SALE,
        D(2032, 12, 31),
        order_id="ord-1",
        customer_ref="cus_1",
        corrects_invoice_id=None,
        sale_invoice_id="inv-1",
    )
    assert (built.kind, built.invoice_id) == ("correction_invoice", "inv-1")
    assert pending.invoice_id == "inv-1"
    assert (sale.kind, sale.invoice_id) == ("invoice", None)
    hold = LegalHold("invoice", "inv-1")
    assert held_ids([hold], [built, pending, sale]) == {"cor-1", "cor-2", "inv-1"}
    # A hold on the correction itself does not reach the original.
    assert held_ids([LegalHold("invoice", "cor-1")], [built, sale]) == {"cor-1"}


def test_held_ids_answers_a_batch_with_every_scope():
    refs = [
        RecordRef("invoice", "i1", None, "cus_1", "o1"),
        RecordRef("invoice", "i2", None, "cus_2", "o2"),
        RecordRef("correction_invoice", "k2", None, "cus_2", "o2", "i2"),
        RecordRef("invoice", "i3", None, "cus_3", "o3"),
    ]
    assert held_ids([], refs) == set()
    assert held_ids([LegalHold("customer_ref", "cus_1")], refs) == {"i1"}
    assert held_ids([LegalHold("order", "o2")], refs) == {"i2", "k2"}
    assert held_ids([LegalHold("invoice", "i2"), LegalHold("order", "o3")], refs) == {
        "i2",
        "k2",
        "i3",
    }
    assert held_ids([LegalHold("all")], refs) == {"i1", "i2", "k2", "i3"}
