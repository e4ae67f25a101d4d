"""Retention engine: the worked examples of docs/retention-law.md §8, presets, options, codes."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.holds import LegalHold, RecordRef, held_by
from compliance.purge_plan import select_expired
from compliance.retention import RetentionEngine
from compliance.statutes import de_retain, pl_vat_retain, rolling

VAT = "PL_VAT_112+OP_70_1"
CIT = "PL_OP_86+CIT_27"
ACCT = "PL_UOR_74_2_8"
D = date


@pytest.fixture
def pl() -> RetentionEngine:
    return RetentionEngine()


def codes(retention):
    return {c.code: c.until for c in retention.candidates}


# --- worked examples (docs/retention-law.md §8) ------------------------------------------


def test_example_1_december_invoice(pl):
    r = pl.invoice(issue_date=D(2026, 12, 15), ksef_accepted=True)
    assert r.until == D(2032, 12, 31)
    assert r.code == f"{VAT}+{CIT}"
    assert codes(r) == {VAT: D(2032, 12, 31), CIT: D(2032, 12, 31), ACCT: D(2031, 12, 31)}
    assert r.ksef_storage_until == D(2036, 12, 31)  # informational only, never the until
    assert r.kind == "invoice"


def test_example_2_mid_year_invoice_with_and_without_overlay(pl):
    r = pl.invoice(issue_date=D(2026, 6, 10))
    assert (r.until, r.code) == (D(2032, 12, 31), CIT)
    off = RetentionEngine(income_tax_overlay=False).invoice(issue_date=D(2026, 6, 10))
    assert off.until == D(2031, 12, 31)
    assert off.code == f"{VAT}+{ACCT}"
    vat_only = RetentionEngine(income_tax_overlay=False, books=False)
    assert vat_only.invoice(issue_date=D(2026, 6, 10)).code == VAT


def test_example_3_correction_in_next_year_extends_original_and_refund(pl):
    correction = pl.correction_invoice(issue_date=D(2027, 2, 5))
    assert correction.until == D(2033, 12, 31)
    assert codes(correction)[VAT] == D(2032, 12, 31)
    assert correction.kind == "correction_invoice"

    refund = pl.refund(refunded_at=D(2027, 2, 5), consumer=True, correction=correction)
    assert refund.until == D(2033, 12, 31)

    plain = pl.invoice(issue_date=D(2026, 3, 10))
    original = pl.invoice(issue_date=D(2026, 3, 10), corrections=[correction])
    assert plain.until == D(2032, 12, 31)
    assert original.until == D(2033, 12, 31)
    assert original.code == "LINKED_CORRECTION"
    link = original.candidates[-1]
    assert link.ref == f"correction_invoice:{CIT}"


def test_example_4_consumer_payment_with_later_account_closure(pl):
    r = pl.payment(paid_at=D(2026, 5, 3), consumer=True, contract_anchor=D(2028, 8, 20))
    assert (r.until, r.code) == (D(2034, 12, 31), "PL_KC_118")
    assert codes(r)[CIT] == D(2032, 12, 31)


def test_example_5_germany_new_rule_and_transition():
    de = RetentionEngine("DE")
    assert de.invoice(issue_date=D(2026, 12, 15)).until == D(2034, 12, 31)
    old = de.invoice(issue_date=D(2018, 3, 1))
    assert (old.until, old.code) == (D(2026, 12, 31), "DE_USTG_14B_AO_147")
    # A 2014 document's 10-year period had expired by the end of 2024: old rule kept.
    before = de.invoice(issue_date=D(2014, 5, 1))
    assert (before.until, before.code) == (D(2024, 12, 31), "DE_AO_147_OLD_10Y")
    assert de_retain(D(2015, 1, 1)) == D(2023, 12, 31)


def test_example_6_legal_hold_is_a_flag_not_a_date(pl):
    r = pl.invoice(issue_date=D(2026, 6, 10))
    assert r.until == D(2032, 12, 31)  # the enforcement in 2031 does not change the engine
    ref = RecordRef("invoice", "inv-1", r.until, customer_ref="cus_1", order_id="ord-1")
    after = D(2033, 1, 1)
    assert select_expired([ref], today=after, held=lambda _: False) == [ref]
    hold = LegalHold("invoice", "inv-1")  # art. 70 §4 enforcement, set by an operator
    assert select_expired([ref], today=after, held=held_by([hold])) == []


def test_example_7_logs_and_webhook_events(pl):
    access = pl.audit_log(at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert (access.until, access.code) == (D(2027, 11, 23), "GDPR_5_1_E_LOG_365D")
    login = pl.login_attempt(at=D(2026, 11, 23))
    assert (login.until, login.code) == (D(2027, 2, 21), "GDPR_5_1_E_LOGIN_90D")
    event = pl.webhook_event(received_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert (event.until, event.code) == (D(2027, 2, 21), "GDPR_5_1_E_WEBHOOK_90D")


def test_example_7_event_that_applied_a_payment_stays_with_it(pl):
    payment = pl.payment(paid_at=D(2026, 5, 3), consumer=True, contract_anchor=D(2028, 8, 20))
    r = pl.webhook_event_linked(D(2026, 5, 3), payment)
    assert (r.until, r.code, r.kind) == (D(2034, 12, 31), "LINKED_PAYMENT", "webhook_event")
    assert codes(r)["GDPR_5_1_E_WEBHOOK_90D"] == D(2026, 8, 1)


def test_example_8_erasure_keeps_stub_until_last_linked_record(pl):
    invoice = pl.invoice(issue_date=D(2026, 10, 1))
    payment = pl.payment(paid_at=D(2026, 10, 1), consumer=True)
    assert invoice.until == payment.until == D(2032, 12, 31)
    stub = pl.customer_stub(erased_at=D(2026, 11, 23), linked=[invoice, payment])
    assert (stub.until, stub.code) == (D(2032, 12, 31), "GDPR_17_3_B_STUB")
    assert {c.ref for c in stub.candidates} == {f"invoice:{CIT}", f"payment:{CIT}+PL_KC_118"}


def test_erasure_without_retained_links_deletes_at_once(pl):
    alone = pl.customer_stub(erased_at=D(2026, 11, 23), linked=[])
    assert (alone.until, alone.code) == (D(2026, 11, 23), "GDPR_17_1_ERASE")
    expired = pl.login_attempt(at=D(2026, 1, 1))
    late = pl.customer_stub(erased_at=D(2026, 11, 23), linked=[expired])
    assert (late.until, late.code) == (D(2026, 11, 23), "GDPR_17_1_ERASE")


# --- leap days, quarters, fiscal years, regimes ---------------------------------------------


def test_leap_day_invoice_and_rolling_periods(pl):
    r = pl.invoice(issue_date=D(2028, 2, 29))
    assert codes(r)[VAT] == D(2033, 12, 31)
    assert r.until == D(2034, 12, 31)
    assert rolling(D(2028, 2, 29), 365) == D(2029, 2, 28)
    assert pl.audit_log(at=D(2028, 2, 29)).until == D(2029, 2, 28)
    assert pl.audit_log(at=D(2027, 3, 1)).until == D(2028, 2, 29)  # 365 days cross 2028-02-29
    assert pl.login_attempt(at=D(2028, 2, 29)).until == D(2028, 5, 29)


@pytest.mark.parametrize(
    ("tax_point", "expected"),
    [
        (D(2026, 9, 30), D(2031, 12, 31)),
        (D(2026, 10, 1), D(2032, 12, 31)),
        (D(2026, 12, 31), D(2032, 12, 31)),
    ],
)
def test_quarterly_filer_q4_is_kept_a_year_longer(tax_point, expected):
    assert pl_vat_retain(tax_point, quarterly=True) == expected
    engine = RetentionEngine(quarterly_vat=True, income_tax_overlay=False, books=False)
    assert engine.invoice(issue_date=tax_point).until == expected


def test_monthly_filer_october_is_not_extended():
    engine = RetentionEngine(income_tax_overlay=False, books=False)
    assert engine.invoice(issue_date=D(2026, 10, 1)).until == D(2031, 12, 31)


def test_tax_point_not_issue_date_drives_vat(pl):
    vat_only = RetentionEngine(income_tax_overlay=False, books=False)
    r = vat_only.invoice(issue_date=D(2027, 1, 3), tax_point=D(2026, 12, 31))
    assert r.until == D(2032, 12, 31)


def test_cit_year_ending_june(pl):
    june = RetentionEngine(fiscal_year_end_month=6)
    r = june.invoice(issue_date=D(2027, 1, 15))
    assert codes(r)[CIT] == D(2032, 12, 31)  # tax year 2026/27 ends 2027-06-30
    assert codes(r)[ACCT] == D(2032, 12, 31)  # the later reading of art. 74 ust. 3
    assert r.until == D(2032, 12, 31)
    assert pl.invoice(issue_date=D(2027, 1, 15)).until == D(2033, 12, 31)


def test_pit_regime_uses_pit_code():
    r = RetentionEngine(tax_regime="PIT").invoice(issue_date=D(2026, 6, 10))
    assert (r.until, r.code) == (D(2032, 12, 31), "PL_OP_86+PIT_45")


# --- payments, refunds, orders, presets ------------------------------------------------------


def test_payment_is_at_least_its_invoice_but_names_own_statute_on_a_tie(pl):
    invoice = pl.invoice(issue_date=D(2026, 12, 15))
    tie = pl.payment(paid_at=D(2026, 12, 20), consumer=False, invoice=invoice)
    assert (tie.until, tie.code) == (D(2032, 12, 31), CIT)
    corrected = pl.invoice(
        issue_date=D(2026, 12, 15), corrections=[pl.correction_invoice(issue_date=D(2027, 2, 5))]
    )
    longer = pl.payment(paid_at=D(2026, 12, 20), consumer=False, invoice=corrected)
    assert (longer.until, longer.code) == (D(2033, 12, 31), "LINKED_INVOICE")
    assert longer.candidates[-1].ref == "invoice:LINKED_CORRECTION"


def test_b2b_payment_without_tax_rules_keeps_three_years():
    engine = RetentionEngine(income_tax_overlay=False, books=False)
    r = engine.payment(paid_at=D(2026, 5, 3), consumer=False)
    assert (r.until, r.code) == (D(2029, 12, 31), "PL_KC_118_B2B")


def test_order_consumer_b2b_and_books(pl):
    assert pl.order(anchor=D(2028, 8, 20), consumer=True).until == D(2034, 12, 31)
    b2b = pl.order(anchor=D(2028, 8, 20), consumer=False)
    assert (b2b.until, b2b.code) == (D(2033, 12, 31), "PL_UOR_74_2_4")
    no_books = RetentionEngine(books=False).order(anchor=D(2028, 8, 20), consumer=False)
    assert (no_books.until, no_books.code) == (D(2031, 12, 31), "PL_KC_118_B2B")


def test_de_and_generic_presets():
    de, gen = RetentionEngine("DE"), RetentionEngine("generic")
    assert de.payment(paid_at=D(2026, 5, 3), consumer=True).until == D(2034, 12, 31)
    assert de.refund(refunded_at=D(2027, 2, 5), consumer=True).code == "DE_AO_147_BELEG"
    assert de.order(anchor=D(2026, 5, 3), consumer=True).until == D(2032, 12, 31)
    assert de.correction_invoice(issue_date=D(2027, 2, 5)).until == D(2035, 12, 31)
    assert de.invoice(issue_date=D(2026, 1, 5), ksef_accepted=True).ksef_storage_until is None
    assert gen.invoice(issue_date=D(2026, 5, 3)).until == D(2036, 12, 31)
    assert gen.payment(paid_at=D(2026, 5, 3), consumer=False).until == D(2036, 12, 31)
    assert gen.refund(refunded_at=D(2026, 5, 3), consumer=False).code == "GEN_ACCT_10Y"
    assert gen.order(anchor=D(2026, 5, 3), consumer=True).until == D(2032, 12, 31)
    assert gen.audit_log(at=D(2026, 11, 23)).until == D(2027, 11, 23)


@pytest.mark.parametrize(
    "kwargs",
    [{"preset": "FR"}, {"tax_regime": "VAT"}, {"fiscal_year_end_month": 13}],
)
def test_engine_rejects_unknown_configuration(kwargs):
    with pytest.raises(ValueError):  # noqa: PT011 - the three messages differ
        RetentionEngine(**kwargs)


# --- codes, describe, table --------------------------------------------------------------------


def test_describe_round_trips_single_and_joined_codes(pl):
    results = [
        pl.invoice(issue_date=D(2026, 12, 15)),
        pl.refund(refunded_at=D(2027, 2, 5), consumer=True),
        pl.customer_stub(erased_at=D(2026, 1, 1), linked=[]),
        RetentionEngine("DE").invoice(issue_date=D(2014, 1, 1)),
    ]
    for r in results:
        assert pl.describe(r.code) == r.text
    assert pl.describe(VAT).startswith("VAT Act art. 112 + Tax Ordinance art. 70 §1")
    assert pl.describe(f"{VAT}+{CIT}") == f"{pl.describe(VAT)}; {pl.describe(CIT)}"


@pytest.mark.parametrize("code", ["", "PL_VAT_112", "NOPE", f"{VAT}+NOPE", "POLICY_FOO_7Y"])
def test_describe_rejects_unknown_codes(pl, code):
    with pytest.raises(KeyError, match="unknown retention basis code"):
        pl.describe(code)


def test_every_candidate_code_appears_in_the_table():
    for engine in (RetentionEngine(), RetentionEngine("DE"), RetentionEngine("generic")):
        table = {(row.record_kind, row.code) for row in engine.table()}
        invoice = engine.invoice(issue_date=D(2014, 12, 15))
        payment = engine.payment(paid_at=D(2026, 5, 3), consumer=True, invoice=invoice)
        results = [
            invoice,
            engine.invoice(issue_date=D(2026, 3, 1), corrections=[invoice]),
            engine.correction_invoice(issue_date=D(2026, 3, 1)),
            payment,
            engine.refund(refunded_at=D(2026, 3, 1), consumer=False, correction=invoice),
            engine.order(anchor=D(2026, 3, 1), consumer=False),
            engine.webhook_event_linked(D(2026, 3, 1), payment),
            engine.audit_log(at=D(2026, 3, 1)),
            engine.login_attempt(at=D(2026, 3, 1)),
            engine.customer_stub(erased_at=D(2026, 3, 1), linked=[payment]),
            engine.customer_stub(erased_at=D(2026, 3, 1), linked=[]),
        ]
        for r in results:
            for c in r.candidates:
                assert (r.kind, c.code) in table


def test_table_follows_configuration():
    default = {row.code for row in RetentionEngine().table()}
    assert {VAT, CIT, ACCT, "PL_VAT_112aa_KSEF"} <= default
    lean = {row.code for row in RetentionEngine(income_tax_overlay=False, books=False).table()}
    assert CIT not in lean
    assert ACCT not in lean
    assert "PL_OP_86+PIT_45" in {row.code for row in RetentionEngine(tax_regime="PIT").table()}


def test_render_table_markdown_has_one_line_per_row(pl):
    md = pl.render_table_markdown()
    assert md.startswith("# Retention periods\n")
    body = [line for line in md.splitlines() if line.startswith("| ") and "`" in line]
    assert len(body) == len(pl.table())
    assert f"| invoice | `{VAT}` |" in md
    assert "preset **PL**" in md


def test_audit_record_is_json_ready(pl):
    r = pl.invoice(issue_date=D(2026, 12, 15))
    assert r.audit_record()[0] == {
        "code": VAT,
        "text": pl.describe(VAT),
        "until": "2032-12-31",
        "ref": "",
    }


# --- properties --------------------------------------------------------------------------------

days = st.dates(min_value=D(2015, 1, 1), max_value=D(2090, 12, 31))
configs = st.fixed_dictionaries(
    {
        "income_tax_overlay": st.booleans(),
        "books": st.booleans(),
        "quarterly_vat": st.booleans(),
        "tax_regime": st.sampled_from(["CIT", "PIT"]),
        "fiscal_year_end_month": st.integers(1, 12),
    }
)


@given(day=days)
def test_default_pl_invoice_of_year_y_is_kept_to_end_of_y_plus_6(day):
    # retention-law.md §2.2: with the income-tax overlay, every sales invoice of Y → 31 Dec Y+6.
    assert RetentionEngine().invoice(issue_date=day).until == D(day.year + 6, 12, 31)


@given(day=days, later=days, config=configs, consumer=st.booleans())
def test_until_is_the_max_and_codes_fit_the_column(day, later, config, consumer):
    engine = RetentionEngine(**config)
    correction = engine.correction_invoice(issue_date=later)
    invoice = engine.invoice(issue_date=day, corrections=[correction])
    payment = engine.payment(paid_at=day, consumer=consumer, invoice=invoice)
    refund = engine.refund(refunded_at=later, consumer=consumer, correction=correction)
    for r in (correction, invoice, payment, refund):
        assert r.until == max(c.until for c in r.candidates)
        assert r.until >= correction.until or r is correction
        assert r.until.month == 12
        assert r.until.day == 31
        assert len(r.code) <= 64
        assert engine.describe(r.code) == r.text
