"""GDPR data-subject requests by customer_ref (admin): export (art. 15/20) and erasure (art. 17).

Both are audit-logged with their own action (``subject.export``, ``subject.erase``). The work is
done by ``compliance.subject_export`` and ``compliance.subject_erase`` (the procedure is in
docs/retention-law.md §5.6); this module maps it to HTTP.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from compliance.subject_erase import erase
from compliance.subject_export import UnknownSubject, export
from models import Role, utcnow
from service.auth import audit, current_principal, require_role
from service.db import get_session, runtime
from service.errors import ApiError

bp = Blueprint(
    "subjects", __name__, url_prefix="/v1", description="GDPR export and erasure by customer_ref"
)


class ExportSchema(Schema):
    customer_ref = fields.String()
    format = fields.String()
    restricted = fields.Boolean(
        metadata={"description": "an erasure request was made; kept records are restricted"}
    )
    customer_stub = fields.Dict(allow_none=True)
    orders = fields.List(
        fields.Dict(),
        metadata={
            "description": "each order with items, billing (decrypted, if still held), "
            "payments, refunds, invoices and webhook events; every record with "
            "retention_basis, retention_basis_text, retain_until and restriction"
        },
    )


class ErasedRecordSchema(Schema):
    kind = fields.String()
    id = fields.String()
    action = fields.String(metadata={"description": "deleted, restricted or kept"})
    basis = fields.String(allow_none=True)
    basis_text = fields.String(allow_none=True)
    retain_until = fields.String(allow_none=True, metadata={"description": "ISO date"})
    reason = fields.String()
    billing = fields.String(metadata={"description": "orders only: erased, kept … or none held"})


class ErasureSchema(Schema):
    customer_ref = fields.String()
    erased_at = fields.String()
    summary = fields.Dict(keys=fields.String(), values=fields.Integer())
    customer_stub = fields.Nested(ErasedRecordSchema, allow_none=True)
    records = fields.List(fields.Nested(ErasedRecordSchema))


def _unknown(customer_ref: str) -> ApiError:
    return ApiError(404, f"Nothing is known about customer_ref {customer_ref!r}.")


@bp.get("/subjects/<string:customer_ref>/export")
@bp.response(200, ExportSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ADMIN)
def export_subject(customer_ref: str) -> dict[str, Any]:
    """Everything held about a customer_ref, machine-readable (GDPR art. 15 and 20)."""
    session = get_session()
    rt = runtime()
    actor = current_principal().actor
    try:
        data = export(session, rt.vault, customer_ref, engine=rt.retention)
    except UnknownSubject:
        audit(session, actor, "subject.export", customer_ref, details={"found": False})
        session.commit()
        raise _unknown(customer_ref) from None
    details = {"found": True, "orders": len(data["orders"]), "restricted": data["restricted"]}
    audit(session, actor, "subject.export", customer_ref, details=details)
    session.commit()
    return data


@bp.post("/subjects/<string:customer_ref>/erase")
@bp.response(200, ErasureSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ADMIN)
def erase_subject(customer_ref: str) -> dict[str, Any]:
    """Erase what may be erased, restrict what the law keeps, and say why and until when."""
    session = get_session()
    rt = runtime()
    actor = current_principal().actor
    try:
        report = erase(session, rt.vault, rt.retention, customer_ref, now=utcnow())
    except UnknownSubject:
        session.rollback()
        audit(session, actor, "subject.erase", customer_ref, details={"found": False})
        session.commit()
        raise _unknown(customer_ref) from None
    # The audit row commits together with the erasure.
    audit(session, actor, "subject.erase", customer_ref, details={"summary": report["summary"]})
    session.commit()
    return report
