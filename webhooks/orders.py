"""Order registration by the backend, with the order's PayNow payment when PayNow takes the money.

- The buyer is stored only as a Fernet token (Order.billing).
- With PayNow, the order is committed first, then the PayNow payment is created with an
  Idempotency-Key derived from the order id. If PayNow does not answer, the order is kept: the
  same request again (same external_ref and content, any Idempotency-Key) resumes it and gets
  the same PayNow payment. If PayNow refuses it, the order is removed again, so that a
  corrected request can register the same external_ref.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Order, OrderStatus, Payment, new_id, utcnow
from models.vault import Vault
from webhooks.errors import OrderExists, PaynowNotConfigured, PaynowRefused, PaynowUnavailable
from webhooks.events import Billing, LineItem, Provider
from webhooks.payments import insert
from webhooks.paynow_client import (
    PaynowClient,
    PaynowError,
    PaynowValidationError,
    idempotency_key_for,
)

__all__ = ["OrderRequest", "Registration", "gross_minor", "register_order"]

log = logging.getLogger("kwit.orders")


@dataclass(frozen=True)
class OrderRequest:
    """An order as the backend registers it: lines, buyer, and who takes the money."""

    external_ref: str
    customer_ref: str
    provider: Provider
    currency: str
    items: Sequence[LineItem]
    billing: Billing
    continue_url: str | None = None

    @property
    def stored_items(self) -> list[dict[str, Any]]:
        """The lines as Order.items holds them."""
        return [
            {
                "name": item.name,
                "quantity": item.quantity,
                "unit_gross_minor": item.unit_gross_minor,
                "vat_rate": item.vat_rate,
            }
            for item in self.items
        ]


@dataclass(frozen=True)
class Registration:
    order: Order
    redirect_url: str | None = None  # PayNow's paywall for the buyer (PayNow orders only)


def gross_minor(items: Sequence[LineItem]) -> int:
    """The order's gross total in minor units."""
    return sum(item.quantity * item.unit_gross_minor for item in items)


def register_order(
    session: Session, vault: Vault, paynow: PaynowClient | None, request: OrderRequest
) -> Registration:
    """Register the order (or resume an identical one); with PayNow, create its payment there.

    Raises PaynowNotConfigured, OrderExists, PaynowRefused or PaynowUnavailable.
    """
    if request.provider is Provider.PAYNOW and paynow is None:
        raise PaynowNotConfigured()
    billing = request.billing.as_dict()
    created = _insert_order(session, request, vault.encrypt(billing), now=utcnow())
    # Committed at once: the unique external_ref decides between two racing requests, and a
    # PayNow order must exist before PayNow is asked for its payment.
    session.commit()
    order = session.scalars(
        sa.select(Order)
        .where(Order.external_ref == request.external_ref)
        .execution_options(populate_existing=True)
    ).one()
    if not created and not _resumable(session, vault, order, request, billing):
        raise OrderExists(order.id)
    if request.provider is not Provider.PAYNOW:
        return Registration(order)
    assert paynow is not None
    session.commit()  # no transaction, and on SQLite no write lock, while PayNow is called
    try:
        answer = _create_paynow_payment(paynow, order, request.billing.email or "")
    except PaynowValidationError as exc:
        _drop_refused(session, order)
        session.commit()  # nothing exists at PayNow: the external_ref is free again
        raise PaynowRefused("payment", exc.error_types) from exc
    except PaynowError as exc:
        log.warning(
            "paynow create payment failed",
            extra={"order_id": order.id, "error": type(exc).__name__},
        )
        raise PaynowUnavailable("payment", order_id=order.id) from exc
    _record_paynow_payment(session, order, answer, now=utcnow())
    session.commit()  # the answer shows the payment, so it must be durable first
    return Registration(order, answer.get("redirectUrl"))


def _insert_order(session: Session, request: OrderRequest, token: bytes, *, now: datetime) -> bool:
    """Insert the order unless its external_ref exists; True if this call inserted it."""
    values = {
        "id": new_id(),
        "external_ref": request.external_ref,
        "customer_ref": request.customer_ref,
        "provider": request.provider.value,
        "currency": request.currency,
        "gross_minor": gross_minor(request.items),
        "items": request.stored_items,
        "buyer_type": "business" if request.billing.nip else "consumer",
        "billing": token,
        "status": OrderStatus.PENDING.value,
        "continue_url": request.continue_url,
        "created_at": now,
        "updated_at": now,
    }
    stmt = insert(session, Order).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["external_ref"]).returning(Order.id)
    return session.execute(stmt).scalar_one_or_none() is not None


def _resumable(
    session: Session, vault: Vault, order: Order, request: OrderRequest, billing: dict[str, Any]
) -> bool:
    """An existing PayNow order without a payment, identical to this request: resume it."""
    if order.provider != Provider.PAYNOW or order.billing is None:
        return False
    if session.scalar(sa.select(Payment.id).where(Payment.order_id == order.id).limit(1)):
        return False
    same = (
        order.customer_ref == request.customer_ref
        and order.provider == request.provider
        and order.currency == request.currency
        and order.gross_minor == gross_minor(request.items)
        and order.continue_url == request.continue_url
        and [dict(i) for i in order.items] == request.stored_items
    )
    return same and vault.decrypt(order.billing) == billing


def _create_paynow_payment(client: PaynowClient, order: Order, email: str) -> dict[str, Any]:
    """Create (or, with the same derived key, find again) the order's PayNow payment."""
    return client.create_payment(
        amount_minor=order.gross_minor,
        currency=order.currency,
        external_id=order.id,
        description=f"Zamówienie {order.external_ref}"[:255],
        buyer_email=email,
        continue_url=order.continue_url,
        idempotency_key=idempotency_key_for("payment", order.id),
    )


def _drop_refused(session: Session, order: Order) -> None:
    """Remove an order PayNow refused to take a payment for (unless a payment exists after all)."""
    payments = sa.exists().where(Payment.order_id == order.id)
    session.execute(sa.delete(Order).where(Order.id == order.id, ~payments))


def _record_paynow_payment(
    session: Session, order: Order, answer: dict[str, Any], *, now: datetime
) -> None:
    session.execute(
        insert(session, Payment)
        .values(
            id=new_id(),
            order_id=order.id,
            provider=Provider.PAYNOW.value,
            provider_payment_id=str(answer["paymentId"]),
            status=str(answer["status"]) if answer.get("status") else None,
            amount_minor=order.gross_minor,
            currency=order.currency,
            created_at=now,
            updated_at=now,
        )
        # A notification may have recorded the payment first (or a concurrent resume).
        .on_conflict_do_nothing(index_elements=["provider", "provider_payment_id"])
    )
