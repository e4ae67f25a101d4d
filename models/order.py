"""Orders and payments: transaction identifiers and amounts, never people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Restrictable, Retained, Timestamped, new_id
from models.enums import OrderStatus


class Order(Timestamped, Retained, Restrictable, Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    external_ref: Mapped[str] = mapped_column(sa.String(100), unique=True)
    customer_ref: Mapped[str] = mapped_column(sa.String(100), index=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(3))
    gross_minor: Mapped[int] = mapped_column(sa.BigInteger)
    # Line items: name, quantity, unit gross in minor units and VAT rate. No personal data.
    items: Mapped[list[Any]]
    # "business" or "consumer": decides the civil-claims period after billing data is erased.
    buyer_type: Mapped[str] = mapped_column(sa.String(8))
    # Fernet token of the buyer's invoice data; erased (NULL) once the invoice is issued.
    billing: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    status: Mapped[OrderStatus] = mapped_column(default=OrderStatus.PENDING)
    continue_url: Mapped[str | None] = mapped_column(sa.String(1000))

    payments: Mapped[list[Payment]] = relationship(back_populates="order", order_by="Payment.id")

    __table_args__ = (sa.CheckConstraint("gross_minor > 0", name="gross_positive"),)


class Payment(Timestamped, Retained, Restrictable, Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    provider_payment_id: Mapped[str] = mapped_column(sa.String(64))
    # A PaynowPaymentStatus or StripePaymentStatus value (models/enums.py); NULL until the
    # provider has reported one. A plain string: it holds either provider's vocabulary.
    status: Mapped[str | None] = mapped_column(sa.String(24))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # PayNow modifiedAt exactly as received: it has no offset, so it is only compared
    # with other values for the same payment.
    provider_modified_at: Mapped[str | None] = mapped_column(sa.String(40))
    paid_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="payments")

    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_payment_id"),
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
    )
