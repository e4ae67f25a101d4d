"""Tenant retention policies: file format, lengthening, rejection of shortening."""

import json
from datetime import date

import pytest

from compliance.basis_codes import basis_text
from compliance.policy import PolicyError, PolicyRule, parse_policy
from compliance.retention import RetentionEngine, load_policy

D = date
BILLING = {
    "rules": {
        "order": {"eoy_years": 7, "basis": "billing data 7 years after fiscal year end"},
        "payment": {"eoy_years": 7, "basis": "billing data 7 years after fiscal year end"},
    }
}


def test_load_policy_from_json_file(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"version": 1, **BILLING}), encoding="utf-8")
    policy = load_policy(path)
    order = policy.rule("order")
    assert order == PolicyRule("order", eoy_years=7, basis=BILLING["rules"]["order"]["basis"])
    assert order.code == "POLICY_ORDER_7Y"
    assert policy.rule("invoice") is None
    assert load_policy(str(path)) == policy


def test_billing_seven_years_is_accepted_and_wins_with_its_code():
    engine = RetentionEngine(policy=load_policy(BILLING))
    order = engine.order(anchor=D(2028, 8, 20), consumer=True)
    assert (order.until, order.code) == (D(2035, 12, 31), "POLICY_ORDER_7Y")
    assert "billing data 7 years after fiscal year end" in order.text
    assert engine.describe(order.code) == order.text
    assert "PL_KC_118" in {c.code for c in order.candidates}

    payment = engine.payment(paid_at=D(2026, 5, 3), consumer=True, contract_anchor=D(2028, 8, 20))
    assert (payment.until, payment.code) == (D(2035, 12, 31), "POLICY_PAYMENT_7Y")


def test_policy_never_shortens_a_longer_statutory_result():
    engine = RetentionEngine(policy=load_policy(BILLING))
    invoice = engine.invoice(issue_date=D(2026, 3, 10))
    payment = engine.payment(paid_at=D(2026, 3, 10), consumer=False, invoice=invoice)
    assert payment.until == D(2033, 12, 31)  # policy 2033 vs own 2032 and invoice 2032
    corrected = engine.invoice(
        issue_date=D(2026, 3, 10),
        corrections=[engine.correction_invoice(issue_date=D(2029, 2, 1))],
    )
    linked = engine.payment(paid_at=D(2026, 3, 10), consumer=False, invoice=corrected)
    assert (linked.until, linked.code) == (D(2035, 12, 31), "LINKED_INVOICE")


def test_equal_policy_is_accepted_and_the_statute_stays_the_basis():
    engine = RetentionEngine(policy=load_policy({"rules": {"order": {"eoy_years": 6}}}))
    order = engine.order(anchor=D(2028, 8, 20), consumer=True)
    assert (order.until, order.code) == (D(2034, 12, 31), "PL_KC_118")
    assert "POLICY_ORDER_6Y" in {c.code for c in order.candidates}


def test_access_logs_60_days_is_accepted_because_logs_have_no_statutory_minimum():
    engine = RetentionEngine(policy=load_policy({"rules": {"audit_log": {"days": 60}}}))
    r = engine.audit_log(at=D(2026, 11, 23))
    assert (r.until, r.code) == (D(2027, 1, 22), "POLICY_AUDIT_LOG_60D")
    assert [c.code for c in r.candidates] == ["POLICY_AUDIT_LOG_60D"]  # replaces the default
    codes = {(row.record_kind, row.code) for row in engine.table()}
    assert ("audit_log", "POLICY_AUDIT_LOG_60D") in codes
    assert ("audit_log", "GDPR_5_1_E_LOG_365D") not in codes


def test_log_policy_may_also_lengthen_and_linked_events_still_follow_the_payment():
    policy = load_policy({"rules": {"login_attempt": {"days": 180}, "webhook_event": {"days": 30}}})
    engine = RetentionEngine(policy=policy)
    assert engine.login_attempt(at=D(2026, 1, 1)).until == D(2026, 6, 30)
    assert engine.webhook_event(received_at=D(2026, 1, 1)).until == D(2026, 1, 31)
    payment = engine.payment(paid_at=D(2026, 1, 1), consumer=True)
    linked = engine.webhook_event_linked(D(2026, 1, 1), payment)
    assert (linked.until, linked.code) == (D(2032, 12, 31), "LINKED_PAYMENT")


def test_shortening_invoice_is_rejected_naming_rule_code_and_minimum():
    with pytest.raises(PolicyError) as err:
        load_policy({"rules": {"invoice": {"eoy_years": 5}}})
    msg = str(err.value)
    assert msg.startswith("policy for 'invoice' (5 years after the end of the anchor year)")
    assert "statutory minimum PL_OP_86+CIT_27" in msg
    assert "year + 6 for a calendar tax year" in msg
    assert "must be kept until 2032-12-31, the policy gives 2031-12-31" in msg
    assert msg.endswith("it may only lengthen periods")


def test_engine_rechecks_policy_against_its_own_configuration():
    policy = parse_policy({"rules": {"invoice": {"eoy_years": 5}}})  # format only
    with pytest.raises(PolicyError, match=r"statutory minimum PL_VAT_112\+OP_70_1 ") as err:
        RetentionEngine(income_tax_overlay=False, books=False, policy=policy)
    assert "a record dated 2026-12-01" in str(err.value)  # December: deadline in January


def test_days_policy_is_checked_on_the_first_of_the_month():
    with pytest.raises(PolicyError, match="a record dated 2026-01-01 must be kept until"):
        load_policy({"rules": {"correction_invoice": {"days": 2000}}})
    policy = load_policy({"rules": {"invoice": {"days": 2600}}})
    assert RetentionEngine(policy=policy).invoice(issue_date=D(2026, 1, 1)).until == D(2033, 2, 13)


@pytest.mark.parametrize(
    ("kind", "years", "code"),
    [("order", 3, "PL_KC_118"), ("refund", 5, "PL_OP_86+CIT_27"), ("payment", 6, None)],
)
def test_other_statutory_kinds_can_only_be_lengthened(kind, years, code):
    source = {"rules": {kind: {"eoy_years": years}}}
    if code is None:
        assert load_policy(source).rule(kind).eoy_years == years
        return
    with pytest.raises(
        PolicyError, match=rf"policy for '{kind}' .*minimum {code.replace('+', '.')}"
    ):
        load_policy(source)


def test_de_preset_minimum_is_eight_years():
    assert load_policy({"rules": {"invoice": {"eoy_years": 8}}}, preset="DE")
    with pytest.raises(PolicyError, match="minimum DE_USTG_14B_AO_147"):
        load_policy({"rules": {"invoice": {"eoy_years": 7}}}, preset="DE")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ([], "JSON object"),
        ({}, "'rules' object"),
        ({"rules": {}, "extra": 1}, "unknown policy keys"),
        ({"version": 2, "rules": {}}, "unsupported policy version"),
        ({"rules": {"invoices": {"eoy_years": 7}}}, "unknown record kind 'invoices'"),
        ({"rules": {"customer_stub": {"days": 30}}}, "cannot be set by policy"),
        ({"rules": {"order": 7}}, "must be an object"),
        ({"rules": {"order": {"eoy_years": 7, "days": 1}}}, "exactly one"),
        ({"rules": {"order": {"basis": "x"}}}, "exactly one"),
        ({"rules": {"order": {"eoy_years": 7, "why": "x"}}}, "unknown keys"),
        ({"rules": {"order": {"eoy_years": True}}}, "integer from 1 to 100"),
        ({"rules": {"order": {"eoy_years": 0}}}, "integer from 1 to 100"),
        ({"rules": {"audit_log": {"days": 7.5}}}, "integer from 1 to 36500"),
        ({"rules": {"order": {"eoy_years": 7, "basis": 7}}}, "basis must be a string"),
    ],
)
def test_malformed_policies_are_rejected(source, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(source)


def test_invalid_json_file_is_a_policy_error(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text("{rules: }", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(path)


def test_policy_codes_describe_without_the_policy_file():
    text = RetentionEngine().describe("POLICY_CORRECTION_INVOICE_7Y")
    assert text == PolicyRule("correction_invoice", eoy_years=7).text
    assert basis_text("POLICY_AUDIT_LOG_60D") == "Internal retention policy for audit_log: 60 days"
    assert basis_text("POLICY_NOPE_60D") is None


def test_policy_row_in_table():
    engine = RetentionEngine(policy=load_policy(BILLING))
    rows = [row for row in engine.table() if row.code == "POLICY_ORDER_7Y"]
    assert len(rows) == 1
    assert rows[0].formula == "EOY(year(anchor) + 7)"
    assert "with tenant policy" in engine.render_table_markdown()
