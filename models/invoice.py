"""Invoices (sale and correction) and refunds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Restrictable, Retained, Timestamped, new_id
from models.enums import InvoiceKind, InvoiceState, RefundStatus


class Invoice(Timestamped, Retained, Restrictable, Base):
    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    kind: Mapped[InvoiceKind] = mapped_column(default=InvoiceKind.SALE)
    # "sale:<order id>" or "correction:<refund id>": one sale invoice per order, one
    # correction per refund, enforced by the database.
    dedupe_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    refund_id: Mapped[str | None] = mapped_column(sa.ForeignKey("refunds.id"))
    corrects_invoice_id: Mapped[str | None] = mapped_column(sa.ForeignKey("invoices.id"))
    state: Mapped[InvoiceState] = mapped_column(default=InvoiceState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    provider: Mapped[str] = mapped_column(sa.String(16))
    provider_payment_id: Mapped[str | None] = mapped_column(sa.String(64))
    gross_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    paid_at: Mapped[datetime | None]
    # Filled when the invoice is built and issued.
    ifirma_id: Mapped[str | None] = mapped_column(sa.String(32))
    number: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    ksef_number: Mapped[str | None] = mapped_column(sa.String(40))
    ksef_status: Mapped[str | None] = mapped_column(sa.String(40))
    issue_date: Mapped[date | None] = mapped_column(index=True)
    sale_date: Mapped[date | None]
    # Net/VAT/gross in minor units per VAT rate, as printed on the invoice.
    totals: Mapped[dict[str, Any] | None]
    # The buyer's NIP is part of the statutory invoice content (and of the accountant's
    # manifest); "B2C" invoices have none. Names, e-mails and addresses are never stored.
    buyer_nip: Mapped[str | None] = mapped_column(sa.String(13))
    # The iFirma request, built once before the first call; it holds buyer data, so it
    # is encrypted and erased once the invoice is issued.
    payload_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    payload_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    pdf_key: Mapped[str | None] = mapped_column(sa.String(128))
    issued_at: Mapped[datetime | None]


class Refund(Timestamped, Retained, Restrictable, Base):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(sa.String(26), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    payment_id: Mapped[str] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    provider_refund_id: Mapped[str | None] = mapped_column(sa.String(64))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[RefundStatus] = mapped_column(default=RefundStatus.NEW)
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_refund_id"),
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
    )
