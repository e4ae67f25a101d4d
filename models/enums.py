"""Status vocabularies shared by models, ingestion and jobs."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    BACKEND = "backend"
    ACCOUNTANT = "accountant"
    ADMIN = "admin"


class VatRate(enum.StrEnum):
    """The Polish VAT rates an invoice line can carry: percentages, exempt ("zw"), out of scope ("np")."""

    STANDARD = "23"
    REDUCED_8 = "8"
    REDUCED_5 = "5"
    ZERO = "0"
    EXEMPT = "zw"
    NOT_SUBJECT = "np"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class InvoiceKind(enum.StrEnum):
    SALE = "sale"
    CORRECTION = "correction"


class InvoiceState(enum.StrEnum):
    PENDING = "pending"
    CALLING = "calling"
    ISSUED = "issued"
    FAILED = "failed"
    UNKNOWN = "unknown"


class PaynowPaymentStatus(enum.StrEnum):
    """A PayNow v3 payment's status (see docs/protocols/paynow.md, payment statuses).

    PayNow may add statuses: one outside this list is recorded and ignored, never applied.
    """

    NEW = "NEW"
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"
    EXPIRED = "EXPIRED"
    ABANDONED = "ABANDONED"


class StripePaymentStatus(enum.StrEnum):
    """A Stripe payment as Kwit records it: Stripe's events only ever report money received."""

    PENDING = "pending"
    PAID = "paid"


class OutboxKind(enum.StrEnum):
    """What an outbox item asks a worker to do; invoicing/jobs.py maps each kind to its handler."""

    ISSUE_INVOICE = "issue_invoice"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class EventOutcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"


class RefundStatus(enum.StrEnum):
    NEW = "NEW"
    PENDING = "PENDING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class HoldScope(enum.StrEnum):
    CUSTOMER_REF = "customer_ref"
    ORDER = "order"
    INVOICE = "invoice"
    ALL = "all"


class IdempotencyState(enum.StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"
