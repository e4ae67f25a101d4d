"""Orders: the write side. POST /v1/orders and POST /v1/orders/{id}/refunds (Idempotency-Key).

The views parse and validate the request, call webhooks/orders.py or webhooks/refunds.py, and
map their refusals (webhooks/errors.py) to problem+json. No answer carries buyer data.

- Only PLN is accepted: invoices go out through iFirma's `fakturakraj`, which is PLN-only.
- provider=paynow: if PayNow does not answer (502), the order is kept and the same request again
  resumes it; if PayNow refuses it (422), the order is removed again.
- Refunds are made here only for PayNow payments (Stripe and external orders: 422). A retry of
  the same request after a 502 finds and resumes the same refund.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema
from stdnum.pl import nip as pl_nip

from models import Refund, Role
from service.api.orders import OrderSchema, RefundStateSchema, order_view
from service.auth import require_role
from service.config import VAT_RATES
from service.db import get_session, runtime
from service.errors import ApiError
from service.idempotency import OPENAPI_PARAMETER, current_request, idempotent
from service.providers import paynow_for
from service.worker import dispatch
from webhooks import errors
from webhooks.events import Billing, LineItem, Provider
from webhooks.orders import OrderRequest, gross_minor, register_order
from webhooks.refunds import create_refund as refund_order
from webhooks.refunds import refund_id_for

bp = Blueprint(
    "orders_write", __name__, url_prefix="/v1", description="Register orders and refund them"
)

CURRENCIES = ("PLN",)
PROVIDERS = ("paynow", "stripe", "external")
REFUND_REASONS = ("RMA", "REFUND_BEFORE_14", "REFUND_AFTER_14", "OTHER")
# PayNow's amount limits in grosze (see docs/protocols/paynow.md, create-payment request).
PAYNOW_MIN, PAYNOW_MAX = 100, 100_000_000
PAYNOW_MAX_EMAIL = 50
_DOC = {"security": [{"ApiKey": []}], "parameters": [OPENAPI_PARAMETER]}
_ERRORS = {
    400: {"description": "Idempotency-Key missing or malformed"},
    409: {"description": "same key still in flight, or a conflicting existing object"},
    422: {"description": "invalid request (`errors` names the fields), or key reused"},
    502: {"description": "PayNow did not answer; retry the same request to resume"},
}


def _check_nip(value: str | None) -> None:
    if value is not None and not pl_nip.is_valid(value):
        raise ValidationError("Not a valid Polish NIP (format or checksum).")


class ItemCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 300))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(1, 1_000_000))
    unit_gross_minor = fields.Integer(
        required=True, strict=True, validate=validate.Range(1, 10**10)
    )
    vat_rate = fields.String(required=True, validate=validate.OneOf(VAT_RATES))


class AddressSchema(Schema):
    line1 = fields.String(required=True, validate=validate.Length(1, 200))
    line2 = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 200))
    postal_code = fields.String(required=True, validate=validate.Length(1, 16))
    city = fields.String(required=True, validate=validate.Length(1, 100))
    country = fields.String(
        load_default="PL",
        validate=validate.Regexp(r"^[A-Za-z]{2}$", error="An ISO 3166 alpha-2 code, e.g. PL."),
    )

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["country"] = data["country"].upper()
        code = data["postal_code"].strip()
        if data["country"] == "PL":
            digits = code.replace("-", "")
            if not (digits.isdigit() and len(digits) == 5):
                raise ValidationError({"postal_code": ["A Polish postal code: NN-NNN."]})
            code = f"{digits[:2]}-{digits[2:]}"
        data["postal_code"] = code
        return data


class BuyerSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 150))
    nip = fields.String(load_default=None, allow_none=True, validate=_check_nip)
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    address = fields.Nested(AddressSchema, required=True)


class OrderCreateSchema(Schema):
    external_ref = fields.String(required=True, validate=validate.Length(1, 100))
    customer_ref = fields.String(required=True, validate=validate.Length(1, 100))
    currency = fields.String(
        required=True,
        validate=validate.OneOf(CURRENCIES, error="Only PLN is supported (iFirma fakturakraj)."),
    )
    items = fields.List(
        fields.Nested(ItemCreateSchema), required=True, validate=validate.Length(1, 100)
    )
    buyer = fields.Nested(BuyerSchema, required=True)
    provider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    continue_url = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=1000),
    )

    @validates_schema
    def _paynow_rules(self, data: dict[str, Any], **_: Any) -> None:
        if data["provider"] != "paynow":
            return
        email = data["buyer"].get("email")
        if not email or len(email) > PAYNOW_MAX_EMAIL:
            raise ValidationError(
                {"buyer": {"email": [f"PayNow needs the buyer's e-mail (≤ {PAYNOW_MAX_EMAIL})."]}}
            )
        total = gross_minor(_items(data["items"]))
        if not PAYNOW_MIN <= total <= PAYNOW_MAX:
            raise ValidationError(
                {"items": [f"PayNow takes totals of {PAYNOW_MIN}..{PAYNOW_MAX} grosze."]}
            )


class OrderCreatedSchema(OrderSchema):
    redirect_url = fields.String(
        allow_none=True, metadata={"description": "PayNow paywall for the buyer (paynow only)"}
    )


class RefundCreateSchema(Schema):
    amount_minor = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10**10))
    reason = fields.String(required=True, validate=validate.OneOf(REFUND_REASONS))


class RefundSchema(RefundStateSchema):
    order_id = fields.String()
    provider = fields.String()
    currency = fields.String()


@bp.post("/orders")
@bp.doc(**_DOC, responses=_ERRORS)
@require_role(Role.BACKEND)
@idempotent
@bp.arguments(OrderCreateSchema)
@bp.response(201, OrderCreatedSchema)
def create_order(data: dict[str, Any]) -> dict[str, Any]:
    """Register an order; with provider paynow, also create its PayNow payment."""
    rt = runtime()
    session = get_session()
    provider = Provider(data["provider"])
    request = OrderRequest(
        external_ref=data["external_ref"],
        customer_ref=data["customer_ref"],
        provider=provider,
        currency=data["currency"],
        items=_items(data["items"]),
        billing=_billing(data["buyer"]),
        continue_url=data.get("continue_url"),
    )
    client = paynow_for(rt) if provider is Provider.PAYNOW else None
    try:
        registered = register_order(session, rt.vault, client, request)
    except errors.PaymentsError as exc:
        raise _api_error(exc) from None
    return order_view(session, registered.order, redirect_url=registered.redirect_url)


@bp.post("/orders/<string:order_id>/refunds")
@bp.doc(**_DOC, responses={404: {"description": "no such order"}, **_ERRORS})
@require_role(Role.BACKEND)
@idempotent
@bp.arguments(RefundCreateSchema)
@bp.response(201, RefundSchema)
def create_refund(data: dict[str, Any], order_id: str) -> Refund:
    """Refund (part of) a paid PayNow order; the correction invoice follows on SUCCESSFUL."""
    rt = runtime()
    ctx = current_request()
    assert ctx is not None  # the view is @idempotent
    try:
        refund, outbox_ids = refund_order(
            get_session(),
            paynow_for(rt),
            order_id,
            refund_id_for(ctx.api_key_id, ctx.key, ctx.fingerprint),
            amount_minor=data["amount_minor"],
            reason=data["reason"],
        )
    except errors.PaymentsError as exc:
        raise _api_error(exc) from None
    for outbox_id in outbox_ids:
        dispatch(rt, outbox_id)
    return refund


def _items(items: list[dict[str, Any]]) -> list[LineItem]:
    return [LineItem(i["name"], i["quantity"], i["unit_gross_minor"], i["vat_rate"]) for i in items]


def _billing(buyer: dict[str, Any]) -> Billing:
    """The buyer as invoicing/payload.py reads it back (its contractor builder fixes the keys)."""
    address = buyer["address"]
    return Billing(
        name=buyer["name"],
        email=buyer.get("email"),
        nip=pl_nip.compact(buyer["nip"]) if buyer.get("nip") else None,
        line1=address["line1"],
        line2=address.get("line2"),
        postal_code=address["postal_code"],
        city=address["city"],
        country=address["country"],
    )


_NOT_CONFIGURED = "PayNow is not configured on this Kwit."


def _api_error(exc: errors.PaymentsError) -> ApiError:
    """The problem+json answer to a refusal of the payment side."""
    match exc:
        case errors.UnknownOrder():
            return ApiError(404, f"No order {exc.order_id!r}.")
        case errors.PaynowNotConfigured():
            return ApiError(503, _NOT_CONFIGURED)
        case errors.OrderExists():
            return ApiError(
                409,
                "An order with this external_ref already exists.",
                reason=exc.reason,
                order_id=exc.order_id,
            )
        case errors.OrderNotPaid():
            return ApiError(
                422,
                f"The order is {exc.order_status}; only paid orders can be refunded.",
                reason=exc.reason,
            )
        case errors.RefundAtProvider():
            return ApiError(
                422,
                f"Refund {exc.provider} payments at {exc.provider}; Kwit records Stripe refunds "
                "from charge.refunded and issues the correction invoice.",
                reason=exc.reason,
            )
        case errors.RefundExceedsBalance():
            return ApiError(
                422,
                "The refund exceeds what is left to refund on this payment.",
                errors={
                    exc.field: [f"At most {exc.refundable_minor} (minor units) is left to refund."]
                },
                refundable_minor=exc.refundable_minor,
            )
        case errors.RefundAlreadyRefused():
            return ApiError(422, "PayNow refused this refund.", reason=exc.reason)
        case errors.PaynowRefused():
            return ApiError(
                422,
                f"PayNow refused the {exc.subject}.",
                reason=exc.reason,
                paynow_errors=exc.paynow_errors,
            )
        case errors.PaynowUnavailable():
            return ApiError(
                502,
                f"PayNow did not answer. The {exc.subject} is recorded: send the same request "
                "again (the same Idempotency-Key, or for orders any key) to resume it.",
                reason=exc.reason,
                order_id=exc.order_id,
                refund_id=exc.refund_id,
            )
        case errors.RefundUnresolved():
            return ApiError(
                409,
                "This refund's first PayNow call got no answer over a day ago; check it in PayNow.",
                reason=exc.reason,
                refund_id=exc.refund_id,
            )
    raise exc  # a refusal without an answer here is a bug: let it be a 500
