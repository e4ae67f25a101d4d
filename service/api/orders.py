"""Orders: read endpoints (the write side lives in orders_write.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from models import Invoice, Order, Payment, Refund, Role
from service.auth import require_role
from service.db import get_session
from service.errors import ApiError

bp = Blueprint(
    "orders", __name__, url_prefix="/v1", description="Orders, payments and their invoices"
)


class ItemSchema(Schema):
    name = fields.String()
    quantity = fields.Integer()
    unit_gross_minor = fields.Integer()
    vat_rate = fields.String()


class ProviderStatus(fields.String):
    """A payment's provider status; "" while the provider has reported none (NULL in the table).

    The answer keeps the string it always had, so backends need not handle null.
    """

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return super()._serialize("" if value is None else value, attr, obj, **kwargs)


class PaymentStateSchema(Schema):
    id = fields.String()
    provider = fields.String()
    provider_payment_id = fields.String()
    status = ProviderStatus()
    amount_minor = fields.Integer()
    currency = fields.String()
    paid_at = fields.DateTime(allow_none=True)
    redirect_url = fields.String(allow_none=True)


class RefundStateSchema(Schema):
    id = fields.String()
    provider_refund_id = fields.String(allow_none=True)
    amount_minor = fields.Integer()
    status = fields.String()
    reason = fields.String(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)


class InvoiceStateSchema(Schema):
    id = fields.String()
    kind = fields.String()
    state = fields.String()
    number = fields.String(allow_none=True)
    ksef_number = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)


class OrderSchema(Schema):
    id = fields.String()
    external_ref = fields.String()
    customer_ref = fields.String()
    provider = fields.String()
    currency = fields.String()
    gross_minor = fields.Integer()
    status = fields.String()
    items = fields.List(fields.Nested(ItemSchema))
    billing_held = fields.Boolean(metadata={"description": "encrypted buyer data still held"})
    created_at = fields.DateTime()
    payments = fields.List(fields.Nested(PaymentStateSchema))
    refunds = fields.List(fields.Nested(RefundStateSchema))
    invoices = fields.List(fields.Nested(InvoiceStateSchema))
    retention_basis = fields.String(allow_none=True)
    retain_until = fields.Date(allow_none=True)


class OrderQuerySchema(Schema):
    external_ref = fields.String(required=True, metadata={"description": "the backend's own id"})


def order_view(session: sa.orm.Session, order: Order, **extra: Any) -> dict[str, Any]:
    """The order with its payment, refund and invoice state, as the API shows it."""
    payments = session.scalars(sa.select(Payment).where(Payment.order_id == order.id)).all()
    refunds = session.scalars(sa.select(Refund).where(Refund.order_id == order.id)).all()
    invoices = session.scalars(
        sa.select(Invoice).where(Invoice.order_id == order.id).order_by(Invoice.created_at)
    ).all()
    view = {
        "id": order.id,
        "external_ref": order.external_ref,
        "customer_ref": order.customer_ref,
        "provider": order.provider,
        "currency": order.currency,
        "gross_minor": order.gross_minor,
        "status": order.status.value,
        "items": order.items,
        "billing_held": order.billing is not None,
        "created_at": order.created_at,
        "payments": payments,
        "refunds": refunds,
        "invoices": invoices,
        "retention_basis": order.retention_basis,
        "retain_until": order.retain_until,
    }
    view.update(extra)
    return view


@bp.get("/orders/<string:order_id>")
@bp.response(200, OrderSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.BACKEND)
def get_order(order_id: str) -> dict[str, Any]:
    """One order with its payment, refund and invoice state."""
    session = get_session()
    order = session.get(Order, order_id)
    if order is None:
        raise ApiError(404, f"No order {order_id!r}.")
    return order_view(session, order)


@bp.get("/orders")
@bp.arguments(OrderQuerySchema, location="query")
@bp.response(200, OrderSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.BACKEND)
def find_order(query: dict[str, Any]) -> dict[str, Any]:
    """Find an order by the backend's external_ref."""
    session = get_session()
    order = session.scalar(sa.select(Order).where(Order.external_ref == query["external_ref"]))
    if order is None:
        raise ApiError(404, "No order with that external_ref.")
    return order_view(session, order)
