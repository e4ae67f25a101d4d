"""Invoices for accountants: list with filters and cursor pagination, one invoice, its PDF.

The PDF download writes two audit rows, like the archive: `require_role`'s request row (who
asked) and an "invoice.pdf" row naming the invoice, its number and checksum (what was sent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from compliance.holds import held_invoice_ids
from invoicing.archive import pdf_filename
from models import Invoice, InvoiceState, Role
from models.blobs import BlobNotFound
from service.auth import audit, current_principal, require_role
from service.db import get_session, runtime
from service.errors import ApiError

log = logging.getLogger("kwit.invoices")

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


def invoice_view(invoice: Invoice, *, held: bool) -> dict[str, Any]:
    view = {
        column: getattr(invoice, column)
        for column in InvoiceSchema._declared_fields
        if column != "legal_hold"
    }
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


_PDF_RESPONSES = {
    "200": {
        "description": "The PDF as issued; ETag is its SHA-256.",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    },
    "404": {"description": "No such invoice, or it has no PDF (yet)."},
}


@bp.get("/invoices/<string:invoice_id>/pdf")
@bp.doc(security=[{"ApiKey": []}], responses=_PDF_RESPONSES)
@require_role(Role.ACCOUNTANT)
def get_invoice_pdf(invoice_id: str) -> Response:
    """The invoice's PDF, streamed from storage, named after the invoice number."""
    session = get_session()
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise ApiError(404, f"No invoice {invoice_id!r}.")
    if not invoice.pdf_key:
        raise ApiError(
            404, f"Invoice {invoice_id!r} has no PDF ({invoice.state.value}).", reason="no_pdf"
        )
    chunks = runtime().blobs.read_chunks(invoice.pdf_key)
    try:
        first = next(chunks, b"")  # look before answering 200: a missing blob is still a 404
    except BlobNotFound:
        log.error("invoice PDF missing from storage", extra={"invoice_id": invoice.id})
        raise ApiError(
            404, f"The PDF of invoice {invoice_id!r} is missing from storage.", reason="missing"
        )
    audit(
        session,
        current_principal().actor,
        "invoice.pdf",
        invoice.id,
        details={"number": invoice.number, "sha256": invoice.pdf_sha256},
    )
    session.commit()
    body = _checked(first, chunks, invoice.id, invoice.pdf_sha256)
    response = Response(body, mimetype="application/pdf")
    name = pdf_filename(invoice.number, invoice.id)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if invoice.pdf_sha256:
        response.set_etag(invoice.pdf_sha256)
    response.call_on_close(chunks.close)
    return response


def _checked(
    first: bytes, rest: Iterator[bytes], invoice_id: str, recorded: str | None
) -> Iterator[bytes]:
    """Send the PDF; log corrupted storage (the bytes no longer match the recorded checksum)."""
    digest = hashlib.sha256(first)
    yield first
    for chunk in rest:
        digest.update(chunk)
        yield chunk
    if recorded and digest.hexdigest() != recorded.lower():
        log.error(
            "invoice PDF does not match its recorded checksum",
            extra={"invoice_id": invoice_id, "actual_sha256": digest.hexdigest()},
        )
