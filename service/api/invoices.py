"""Invoices for accountants: list with filters and cursor pagination, and one invoice."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models import Invoice, InvoiceState, LegalHold, Order, Role
from service.auth import require_role
from service.db import get_session
from service.errors import ApiError

bp = Blueprint("invoices", __name__, url_prefix="/v1", description="VAT invoices")

PAGE_SIZE_MAX = 500


class RateTotalsSchema(Schema):
    net_minor = fields.Integer()
    vat_minor = fields.Integer()
    gross_minor = fields.Integer()


class InvoiceSchema(Schema):
    id = fields.String()
    order_id = fields.String()
    kind = fields.String()
    state = fields.String()
    number = fields.String(allow_none=True)
    ksef_number = fields.String(allow_none=True)
    ksef_status = fields.String(allow_none=True)
    issue_date = fields.Date(allow_none=True)
    sale_date = fields.Date(allow_none=True)
    gross_minor = fields.Integer()
    currency = fields.String()
    totals = fields.Dict(
        keys=fields.String(), values=fields.Nested(RateTotalsSchema), allow_none=True
    )
    provider = fields.String()
    provider_payment_id = fields.String(allow_none=True)
    corrects_invoice_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    pdf_sha256 = fields.String(allow_none=True)
    retention_basis = fields.String(allow_none=True)
    retain_until = fields.Date(allow_none=True)
    legal_hold = fields.Boolean()


class InvoicePageSchema(Schema):
    items = fields.List(fields.Nested(InvoiceSchema))
    next_cursor = fields.String(allow_none=True)


class InvoiceQuerySchema(Schema):
    from_ = fields.Date(data_key="from", metadata={"description": "issue date, inclusive"})
    to = fields.Date(metadata={"description": "issue date, inclusive"})
    state = fields.String(validate=validate.OneOf([s.value for s in InvoiceState]))
    number = fields.String()
    cursor = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=PAGE_SIZE_MAX))

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("`from` is after `to`.", field_name="from")


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "The cursor is not one this API returned.")


def held_invoice_ids(session: sa.orm.Session, invoices: list[Invoice]) -> set[str]:
    """Which of these invoices are covered by an active legal hold (any scope)."""
    holds = session.scalars(sa.select(LegalHold).where(LegalHold.released_at.is_(None))).all()
    if not holds:
        return set()
    if any(h.scope.value == "all" for h in holds):
        return {i.id for i in invoices}
    order_ids = {i.order_id for i in invoices}
    customers = dict(
        session.execute(
            sa.select(Order.id, Order.customer_ref).where(Order.id.in_(order_ids))
        ).all()
    )
    held: set[str] = set()
    for invoice in invoices:
        for hold in holds:
            value = hold.scope_value
            if (
                (hold.scope.value == "invoice" and value == invoice.id)
                or (hold.scope.value == "order" and value == invoice.order_id)
                or (hold.scope.value == "customer_ref" and value == customers.get(invoice.order_id))
            ):
                held.add(invoice.id)
    return held


def invoice_view(invoice: Invoice, *, held: bool) -> dict[str, Any]:
    view = {column: getattr(invoice, column) for column in InvoiceSchema._declared_fields}
    view["kind"] = invoice.kind.value
    view["state"] = invoice.state.value
    view["legal_hold"] = held
    return view


@bp.get("/invoices")
@bp.arguments(InvoiceQuerySchema, location="query")
@bp.response(200, InvoicePageSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ACCOUNTANT)
def list_invoices(query: dict[str, Any]) -> dict[str, Any]:
    """Invoices filtered by issue date, state and number, oldest first, with a cursor."""
    session = get_session()
    stmt = sa.select(Invoice).order_by(Invoice.id).limit(query["limit"] + 1)
    if "from_" in query:
        stmt = stmt.where(Invoice.issue_date >= query["from_"])
    if "to" in query:
        stmt = stmt.where(Invoice.issue_date <= query["to"])
    if "state" in query:
        stmt = stmt.where(Invoice.state == InvoiceState(query["state"]))
    if "number" in query:
        stmt = stmt.where(Invoice.number == query["number"])
    if "cursor" in query:
        stmt = stmt.where(Invoice.id > _decode_cursor(query["cursor"]))
    rows = list(session.scalars(stmt))
    page, more = rows[: query["limit"]], len(rows) > query["limit"]
    held = held_invoice_ids(session, page)
    return {
        "items": [invoice_view(i, held=i.id in held) for i in page],
        "next_cursor": _encode_cursor(page[-1].id) if more else None,
    }


@bp.get("/invoices/<string:invoice_id>")
@bp.response(200, InvoiceSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ACCOUNTANT)
def get_invoice(invoice_id: str) -> dict[str, Any]:
    """One invoice: state, numbers, KSeF number, dates, amounts per VAT rate and retention."""
    session = get_session()
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise ApiError(404, f"No invoice {invoice_id!r}.")
    return invoice_view(invoice, held=bool(held_invoice_ids(session, [invoice])))
