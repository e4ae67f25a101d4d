"""Kwit's data model: SQLAlchemy 2.0 mappings. Identifiers and amounts, not people."""

from models.access import ApiKey, AuditEntry, CustomerStub, IdempotencyKey, LegalHold, LoginAttempt
from models.base import Base, new_id, utcnow
from models.enums import (
    EventOutcome,
    HoldScope,
    IdempotencyState,
    InvoiceKind,
    InvoiceState,
    OrderStatus,
    OutboxKind,
    OutboxState,
    RefundStatus,
    Role,
    VatRate,
)
from models.invoice import Invoice, Refund
from models.order import Order, Payment
from models.outbox import OutboxItem
from models.webhook_event import WebhookEvent

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "CustomerStub",
    "EventOutcome",
    "HoldScope",
    "IdempotencyKey",
    "IdempotencyState",
    "Invoice",
    "InvoiceKind",
    "InvoiceState",
    "LegalHold",
    "LoginAttempt",
    "Order",
    "OrderStatus",
    "OutboxItem",
    "OutboxKind",
    "OutboxState",
    "Payment",
    "Refund",
    "RefundStatus",
    "Role",
    "VatRate",
    "WebhookEvent",
    "new_id",
    "utcnow",
]
