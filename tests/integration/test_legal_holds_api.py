"""Legal holds API: admin only, create/list/release, problem+json validation, audit, purge effect."""

from datetime import date

import pytest
import sqlalchemy as sa

from compliance import purge
from compliance.tags import retag_order
from models import AuditEntry, LegalHold
from tests.factories import make_issued_invoice
from tests.support import assert_problem, auth

HOLD = {
    "scope": "customer_ref",
    "value": "cust-1",
    "reason": "tax audit VAT 2026-06",
    "reference": "KAS/123",
}


@pytest.fixture
def admin(make_key) -> dict[str, str]:
    return auth(make_key("admin", "ops"))


def audit_actions(app, prefix: str) -> list[AuditEntry]:
    with app.extensions["kwit"].sessions() as s:
        stmt = sa.select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%"))
        return list(s.scalars(stmt.order_by(AuditEntry.at)))


@pytest.mark.parametrize("role", ["backend", "accountant"])
def test_only_admins_may_use_holds(client, make_key, role) -> None:
    headers = auth(make_key(role))
    assert_problem(client.post("/v1/legal-holds", json=HOLD, headers=headers), 403)
    assert_problem(client.get("/v1/legal-holds", headers=headers), 403)
    assert_problem(client.delete("/v1/legal-holds/01J0000000000000000000000", headers=headers), 403)
    assert_problem(client.get("/v1/legal-holds"), 401)


def test_create_list_release(client, app, admin) -> None:
    created = client.post("/v1/legal-holds", json=HOLD, headers=admin)
    assert created.status_code == 201, created.get_json()
    hold = created.get_json()
    assert {k: hold[k] for k in ("scope", "value", "reason", "reference", "active")} == {
        **HOLD,
        "active": True,
    }
    assert hold["created_by"].startswith("ops (")
    assert hold["released_at"] is None

    everything = client.post(
        "/v1/legal-holds", json={"scope": "all", "reason": "KKS proceedings"}, headers=admin
    )
    assert everything.status_code == 201
    assert everything.get_json()["value"] is None

    listed = client.get("/v1/legal-holds", headers=admin).get_json()["items"]
    assert [h["id"] for h in listed] == [hold["id"], everything.get_json()["id"]]

    released = client.delete(f"/v1/legal-holds/{hold['id']}", headers=admin)
    assert released.status_code == 200
    body = released.get_json()
    assert body["active"] is False
    assert body["released_at"] is not None
    assert body["released_by"].startswith("ops (")

    active = client.get("/v1/legal-holds", headers=admin).get_json()["items"]
    assert [h["id"] for h in active] == [everything.get_json()["id"]]
    both = client.get("/v1/legal-holds?include_released=true", headers=admin).get_json()["items"]
    assert len(both) == 2

    again = assert_problem(client.delete(f"/v1/legal-holds/{hold['id']}", headers=admin), 409)
    assert "already released" in again["detail"]
    assert_problem(client.delete("/v1/legal-holds/nope", headers=admin), 404)

    entries = audit_actions(app, "legal_hold.")
    assert [e.action for e in entries] == [
        "legal_hold.create",
        "legal_hold.create",
        "legal_hold.release",
    ]
    assert entries[0].object == f"legal_hold:{hold['id']}"
    assert entries[0].details == {
        "scope": "customer_ref",
        "value": "cust-1",
        "reference": "KAS/123",
    }
    assert entries[2].actor.startswith("ops (")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "order", "reason": "court case"}, "value"),
        ({"scope": "all", "value": "x", "reason": "audit"}, "value"),
        ({"scope": "everything", "value": "x", "reason": "audit"}, "scope"),
        ({"value": "x", "reason": "audit"}, "scope"),
        ({"scope": "invoice", "value": "x"}, "reason"),
        (
            {"scope": "invoice", "value": "x", "reason": "audit", "reference": "r" * 300},
            "reference",
        ),
        ({"scope": "invoice", "value": "x", "reason": "a"}, "reason"),
        ({"scope": "invoice", "value": "x" * 101, "reason": "audit"}, "value"),
    ],
)
def test_validation_errors_are_422_naming_the_field(client, app, admin, body, field) -> None:
    problem = assert_problem(client.post("/v1/legal-holds", json=body, headers=admin), 422)
    assert field in problem["errors"]
    assert field in problem["detail"]
    with app.extensions["kwit"].sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(LegalHold)) == 0


def test_a_hold_made_through_the_api_stops_the_purge_until_released(client, app, admin) -> None:
    rt = app.extensions["kwit"]
    with rt.sessions.begin() as s:
        invoice = make_issued_invoice(s, blobs=rt.blobs, issue_date=date(2026, 6, 10))
        retag_order(s, rt.retention, invoice.order_id)
        invoice_id = invoice.id

    def planned() -> dict[str, int]:
        with rt.sessions() as s:
            return purge.plan(s, rt.retention, today=date(2033, 1, 1)).counts()["invoices"]

    hold = client.post(
        "/v1/legal-holds",
        json={"scope": "invoice", "value": invoice_id, "reason": "art. 70 §4 enforcement"},
        headers=admin,
    ).get_json()
    assert planned()["held"] == 1
    assert planned()["deleted"] == 0
    client.delete(f"/v1/legal-holds/{hold['id']}", headers=admin)
    assert planned()["deleted"] == 1


def test_hold_domain_errors_carry_a_reason(app) -> None:
    from compliance.holds import HoldError, place_hold, release_hold
    from models import utcnow

    rt = app.extensions["kwit"]
    with rt.sessions() as s:
        for scope, value, reason in (
            ("all", "x", "value_not_allowed"),
            ("order", None, "value_required"),
        ):
            with pytest.raises(HoldError) as err:
                place_hold(
                    s,
                    scope=scope,
                    value=value,
                    reason="audit",
                    reference=None,
                    actor="t",
                    now=utcnow(),
                )
            assert err.value.reason == reason
        hold = place_hold(
            s, scope="order", value="o-1", reason=" audit ", reference=None, actor="t", now=utcnow()
        )
        assert hold.reason == "audit"
        release_hold(s, hold.id, actor="t", now=utcnow())
        for hold_id, reason in ((hold.id, "already_released"), ("nope", "not_found")):
            with pytest.raises(HoldError) as err:
                release_hold(s, hold_id, actor="t", now=utcnow())
            assert err.value.reason == reason
