"""Legal holds (admin): suspend deletion of records under audit, litigation or enforcement.

A hold is a flag, not a date (docs/retention-law.md §2.7, Tax Ordinance art. 70 §2-§6): while it
is active the retention purge and GDPR erasure skip every record it covers. Releasing it makes
those records eligible again by their own retain_until. Placing, releasing and what a hold
covers live in ``compliance.holds``; this module maps them to HTTP and writes the audit rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from compliance import holds
from compliance.holds import HoldError
from models import HoldScope, LegalHold, Role, utcnow
from service.auth import audit, current_principal, require_role
from service.db import get_session
from service.errors import ApiError

bp = Blueprint("legal_holds", __name__, url_prefix="/v1", description="Legal holds")


class HoldCreateSchema(Schema):
    scope = fields.String(
        required=True,
        validate=validate.OneOf([s.value for s in HoldScope]),
        metadata={"description": "customer_ref, order, invoice or all"},
    )
    value = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "the customer_ref, order id or invoice id; omitted for `all`"},
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(min=3, max=2000),
        metadata={"description": "why, e.g. 'tax audit of VAT 2026-06 (OP art. 70 §6)'"},
    )
    reference = fields.String(
        load_default=None,
        validate=validate.Length(max=255),
        metadata={"description": "case number, notice or decision reference"},
    )

    @validates_schema
    def _value_matches_scope(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("scope") == HoldScope.ALL.value:
            if data.get("value"):
                raise ValidationError("Must be omitted when scope is `all`.", field_name="value")
        elif data.get("scope") and not data.get("value"):
            raise ValidationError(f"Required when scope is `{data['scope']}`.", field_name="value")


class HoldSchema(Schema):
    id = fields.String()
    scope = fields.String()
    value = fields.String(allow_none=True)
    reason = fields.String()
    reference = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    released_at = fields.DateTime(allow_none=True)
    released_by = fields.String(allow_none=True)
    active = fields.Boolean()


class HoldListQuerySchema(Schema):
    include_released = fields.Boolean(load_default=False)


class HoldListSchema(Schema):
    items = fields.List(fields.Nested(HoldSchema))


def hold_view(hold: LegalHold) -> dict[str, Any]:
    """The hold as the API shows it."""
    return {
        "id": hold.id,
        "scope": hold.scope.value,
        "value": hold.scope_value,
        "reason": hold.reason,
        "reference": hold.reference,
        "created_by": hold.created_by,
        "created_at": hold.created_at,
        "released_at": hold.released_at,
        "released_by": hold.released_by,
        "active": hold.released_at is None,
    }


_STATUS = {"not_found": 404, "already_released": 409}
_TITLE = {"already_released": "Already released"}


def _http(exc: HoldError) -> ApiError:
    """The problem+json answer for a domain error of ``compliance.holds``."""
    return ApiError(
        _STATUS.get(exc.reason, 422), str(exc), title=_TITLE.get(exc.reason), reason=exc.reason
    )


def _details(hold: LegalHold) -> dict[str, Any]:
    return {"scope": hold.scope.value, "value": hold.scope_value, "reference": hold.reference}


@bp.post("/legal-holds")
@bp.arguments(HoldCreateSchema)
@bp.response(201, HoldSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ADMIN)
def create_hold(body: dict[str, Any]) -> dict[str, Any]:
    """Put records on legal hold: nothing they cover is purged or erased until released."""
    session = get_session()
    principal = current_principal()
    try:
        hold = holds.place_hold(
            session,
            scope=body["scope"],
            value=body["value"],
            reason=body["reason"],
            reference=body["reference"],
            actor=principal.actor,
            now=utcnow(),
        )
    except HoldError as exc:
        raise _http(exc) from None
    # The audit row commits together with the hold.
    audit(
        session,
        principal.actor,
        "legal_hold.create",
        f"legal_hold:{hold.id}",
        details=_details(hold),
    )
    session.commit()
    return hold_view(hold)


@bp.delete("/legal-holds/<string:hold_id>")
@bp.response(200, HoldSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ADMIN)
def release_hold(hold_id: str) -> dict[str, Any]:
    """Release a hold; the records become eligible for deletion again by their own dates.

    Releasing a released hold is 409: the first release (who and when) is never overwritten.
    """
    session = get_session()
    principal = current_principal()
    try:
        hold = holds.release_hold(session, hold_id, actor=principal.actor, now=utcnow())
    except HoldError as exc:
        raise _http(exc) from None
    audit(
        session,
        principal.actor,
        "legal_hold.release",
        f"legal_hold:{hold.id}",
        details=_details(hold),
    )
    session.commit()
    return hold_view(hold)


@bp.get("/legal-holds")
@bp.arguments(HoldListQuerySchema, location="query")
@bp.response(200, HoldListSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ADMIN)
def list_holds(query: dict[str, Any]) -> dict[str, Any]:
    """Active legal holds, oldest first (`include_released=true` lists released ones too)."""
    stmt = sa.select(LegalHold).order_by(LegalHold.created_at, LegalHold.id)
    if not query["include_released"]:
        stmt = stmt.where(LegalHold.released_at.is_(None))
    return {"items": [hold_view(h) for h in get_session().scalars(stmt)]}
