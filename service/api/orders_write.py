"""Orders: the write side. POST /v1/orders and POST /v1/orders/{id}/refunds (Idempotency-Key).

- The buyer is stored only as a Fernet token (Order.billing); no answer carries buyer data.
- Only PLN is accepted: invoices go out through iFirma's `fakturakraj`, which is PLN-only.
- provider=paynow: the order is committed first, then the PayNow payment is created with an
  Idempotency-Key derived from the order id. If PayNow does not answer (502), the order is kept;
  the same request again (same or new key, same external_ref and content) resumes it and gets
  the same PayNow payment. If PayNow refuses it (422), the order is removed again.
- Refunds are made here only for PayNow payments. Stripe refunds are made in Stripe and arrive
  as charge.refunded; external orders have no payment Kwit could refund (both 422). The refund
  row is committed before PayNow is called, its id derived from the API key, Idempotency-Key
  and request fingerprint, so a retry after a 502 finds and resumes the same refund.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from stdnum.pl import nip as pl_nip

from models import Order, OrderStatus, Payment, Refund, RefundStatus, Role, new_id, utcnow
from service.api.orders import OrderSchema, RefundStateSchema, order_view
from service.auth import require_role
from service.config import VAT_RATES
from service.db import get_session, runtime
from service.errors import ApiError
from service.idempotency import OPENAPI_PARAMETER, current_request, idempotent
from service.providers import paynow_for
from service.worker import dispatch
from webhooks.ingest import lock_payment
from webhooks.paynow_client import (
    PaynowClient,
    PaynowError,
    PaynowValidationError,
    idempotency_key_for,
)
from webhooks.paynow_sync import RESUME_WINDOW, submit_refund

log = logging.getLogger("kwit.orders")

bp = Blueprint(
    "orders_write", __name__, url_prefix="/v1", description="Register orders and refund them"
)

CURRENCIES = ("PLN",)
PROVIDERS = ("paynow", "stripe", "external")
REFUND_REASONS = ("RMA", "REFUND_BEFORE_14", "REFUND_AFTER_14", "OTHER")
PAYNOW_MIN, PAYNOW_MAX = 100, 100_000_000  # PayNow's amount limits, grosze (paynow.md §4)
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
        total = _gross(data["items"])
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
    client = paynow_for(rt) if data["provider"] == "paynow" else None
    if data["provider"] == "paynow" and client is None:
        raise ApiError(503, "PayNow is not configured on this Kwit.")
    billing = _billing(data["buyer"])
    order, created = _insert_order(session, data, rt.vault.encrypt(billing))
    if not created and not _resumable(session, rt.vault, order, data, billing):
        raise ApiError(
            409,
            "An order with this external_ref already exists.",
            reason="external_ref_exists",
            order_id=order.id,
        )
    redirect_url = None
    if client is not None:
        redirect_url = _start_payment(session, client, order, billing["email"])
    return order_view(session, order, redirect_url=redirect_url)


@bp.post("/orders/<string:order_id>/refunds")
@bp.doc(**_DOC, responses={404: {"description": "no such order"}, **_ERRORS})
@require_role(Role.BACKEND)
@idempotent
@bp.arguments(RefundCreateSchema)
@bp.response(201, RefundSchema)
def create_refund(data: dict[str, Any], order_id: str) -> Refund:
    """Refund (part of) a paid PayNow order; the correction invoice follows on SUCCESSFUL."""
    rt = runtime()
    session = get_session()
    order = session.get(Order, order_id)
    if order is None:
        raise ApiError(404, f"No order {order_id!r}.")
    refund_id = _refund_id()
    refund = session.get(Refund, refund_id)  # there already if this is a retry after a 502
    client = paynow_for(rt)
    if refund is None:
        refund = _reserve_refund(session, order, refund_id, data, configured=client is not None)
    if refund.provider_refund_id is None and refund.status is RefundStatus.NEW:
        _submit_refund(session, rt, client, refund)
    elif refund.status is RefundStatus.FAILED and refund.provider_refund_id is None:
        raise ApiError(422, "PayNow refused this refund.", reason="paynow_refused")
    return session.scalars(
        sa.select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    ).one()


# ---------------------------------------------------------------- orders


def _insert(session: Session, model: Any) -> Any:
    """INSERT with ON CONFLICT support (PostgreSQL or SQLite)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__)


def _gross(items: list[dict[str, Any]]) -> int:
    return sum(item["quantity"] * item["unit_gross_minor"] for item in items)


def _billing(buyer: dict[str, Any]) -> dict[str, Any]:
    """The document invoicing/payload.py reads (keys fixed by its contractor builder)."""
    address = buyer["address"]
    return {
        "name": buyer["name"],
        "email": buyer.get("email"),
        "nip": pl_nip.compact(buyer["nip"]) if buyer.get("nip") else None,
        "tax_id": None,
        "line1": address["line1"],
        "line2": address.get("line2"),
        "postal_code": address["postal_code"],
        "city": address["city"],
        "country": address["country"],
    }


def _insert_order(session: Session, data: dict[str, Any], token: bytes) -> tuple[Order, bool]:
    """Insert and commit the order; the unique external_ref lets one of two racers win."""
    now = utcnow()
    values = {
        "id": new_id(),
        "external_ref": data["external_ref"],
        "customer_ref": data["customer_ref"],
        "provider": data["provider"],
        "currency": data["currency"],
        "gross_minor": _gross(data["items"]),
        "items": [
            {k: item[k] for k in ("name", "quantity", "unit_gross_minor", "vat_rate")}
            for item in data["items"]
        ],
        "buyer_type": "business" if data["buyer"].get("nip") else "consumer",
        "billing": token,
        "status": OrderStatus.PENDING.value,
        "continue_url": data.get("continue_url"),
        "created_at": now,
        "updated_at": now,
    }
    stmt = _insert(session, Order).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["external_ref"]).returning(Order.id)
    created = session.execute(stmt).scalar_one_or_none() is not None
    session.commit()
    order = session.scalars(
        sa.select(Order)
        .where(Order.external_ref == data["external_ref"])
        .execution_options(populate_existing=True)
    ).one()
    return order, created


def _resumable(
    session: Session, vault: Any, order: Order, data: dict[str, Any], billing: dict[str, Any]
) -> bool:
    """An existing PayNow order without a payment, identical to this request: resume it."""
    if order.provider != "paynow" or order.billing is None:
        return False
    if session.scalar(sa.select(Payment.id).where(Payment.order_id == order.id).limit(1)):
        return False
    same = (
        order.customer_ref == data["customer_ref"]
        and order.provider == data["provider"]
        and order.currency == data["currency"]
        and order.gross_minor == _gross(data["items"])
        and order.continue_url == data.get("continue_url")
        and [dict(i) for i in order.items] == [dict(i) for i in data["items"]]
    )
    return same and vault.decrypt(order.billing) == billing


def _start_payment(session: Session, client: PaynowClient, order: Order, email: str) -> str | None:
    """Create (or, with the same derived key, find again) the order's PayNow payment."""
    session.commit()  # no transaction, and on SQLite no write lock, while PayNow is called
    try:
        answer = client.create_payment(
            amount_minor=order.gross_minor,
            currency=order.currency,
            external_id=order.id,
            description=f"Zamówienie {order.external_ref}"[:255],
            buyer_email=email,
            continue_url=order.continue_url,
            idempotency_key=idempotency_key_for("payment", order.id),
        )
    except PaynowError as exc:
        if isinstance(exc, PaynowValidationError):
            # Refused, so nothing exists at PayNow: drop the order, so that a corrected
            # request can register the same external_ref again.
            payments = sa.exists().where(Payment.order_id == order.id)
            session.execute(sa.delete(Order).where(Order.id == order.id, ~payments))
            session.commit()
        raise _paynow_error(exc, "payment", order_id=order.id)
    now = utcnow()
    session.execute(
        _insert(session, Payment)
        .values(
            id=new_id(),
            order_id=order.id,
            provider="paynow",
            provider_payment_id=str(answer["paymentId"]),
            status=str(answer.get("status") or ""),
            amount_minor=order.gross_minor,
            currency=order.currency,
            created_at=now,
            updated_at=now,
        )
        # A notification may have recorded the payment first (or a concurrent resume).
        .on_conflict_do_nothing(index_elements=["provider", "provider_payment_id"])
    )
    session.commit()
    return answer.get("redirectUrl")


# ---------------------------------------------------------------- refunds


def _refund_id() -> str:
    """A refund id derived from (API key, Idempotency-Key, fingerprint): retries find it."""
    ctx = current_request()
    assert ctx is not None  # the view is @idempotent
    seed = f"{ctx.api_key_id}\x00{ctx.key}\x00{ctx.fingerprint}".encode()
    return base64.b32encode(hashlib.sha256(seed).digest()).decode()[:26]


def _reserve_refund(
    session: Session, order: Order, refund_id: str, data: dict[str, Any], *, configured: bool
) -> Refund:
    """Check the order and the refundable balance, then commit a NEW refund row."""
    paid = session.scalars(
        sa.select(Payment)
        .where(Payment.order_id == order.id, Payment.paid_at.is_not(None))
        .order_by(Payment.paid_at)
    ).first()
    if paid is None or order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
        raise ApiError(
            422, f"The order is {order.status.value}; only paid orders can be refunded.",
            reason="order_not_paid",
        )  # fmt: skip
    if paid.provider != "paynow":
        raise ApiError(
            422,
            f"Refund {paid.provider} payments at {paid.provider}; Kwit records Stripe refunds "
            "from charge.refunded and issues the correction invoice.",
            reason="refund_at_provider",
        )
    if not configured:
        raise ApiError(503, "PayNow is not configured on this Kwit.")
    # The lock serialises refunds of one payment, so two at once cannot both fit the balance.
    payment = lock_payment(session, paid.provider, paid.provider_payment_id)
    assert payment is not None
    reserved = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment.id,
            Refund.status.not_in([RefundStatus.FAILED, RefundStatus.CANCELLED]),
        )
    )
    left = payment.amount_minor - int(reserved or 0)
    if data["amount_minor"] > left:
        raise ApiError(
            422,
            "The refund exceeds what is left to refund on this payment.",
            errors={"amount_minor": [f"At most {left} (minor units) is left to refund."]},
            refundable_minor=left,
        )
    now = utcnow()
    refund = Refund(
        id=refund_id,
        order_id=order.id,
        payment_id=payment.id,
        provider="paynow",
        amount_minor=data["amount_minor"],
        currency=payment.currency,
        reason=data["reason"],
        status=RefundStatus.NEW,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    session.commit()
    return refund


def _submit_refund(session: Session, rt: Any, client: PaynowClient | None, refund: Refund) -> None:
    """Send a committed NEW refund to PayNow (again, after a 502); dispatch its correction."""
    if client is None:
        raise ApiError(503, "PayNow is not configured on this Kwit.")
    if refund.created_at <= utcnow() - RESUME_WINDOW:
        # PayNow may have forgotten the derived key by now: a retry could refund twice.
        raise ApiError(
            409,
            "This refund's first PayNow call got no answer over a day ago; check it in PayNow.",
            reason="refund_unresolved",
            refund_id=refund.id,
        )
    try:
        outbox_ids = submit_refund(session, client, refund.id, now=utcnow())
    except PaynowError as exc:
        raise _paynow_error(exc, "refund", refund_id=refund.id)
    for outbox_id in outbox_ids:
        dispatch(rt, outbox_id)


def _paynow_error(exc: PaynowError, what: str, **ids: str) -> ApiError:
    """422 when PayNow refused (nothing was created there), else 502: retry to resume."""
    if isinstance(exc, PaynowValidationError):
        # Only the error types: PayNow's messages can echo field values (the buyer's e-mail).
        types = [e["errorType"] for e in exc.errors if e.get("errorType")]
        return ApiError(
            422, f"PayNow refused the {what}.", reason="paynow_refused", paynow_errors=types
        )
    log.warning("paynow create %s failed", what, extra={**ids, "error": type(exc).__name__})
    return ApiError(
        502,
        f"PayNow did not answer. The {what} is recorded: send the same request again (the same "
        "Idempotency-Key, or for orders any key) to resume it.",
        reason="paynow_unavailable",
        **ids,
    )
