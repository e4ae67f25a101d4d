"""Typed errors of the payment side, each with a stable `reason` code.

Webhook errors feed logs, metrics and the 400 answer; the others are refusals of requests about
orders, payments and refunds, which service/ maps to their problem+json answers.
"""

from __future__ import annotations

from typing import Literal

SignatureReason = Literal["malformed_header", "no_signature", "mismatch", "too_old", "too_new"]
Reason = Literal[
    "malformed_header", "no_signature", "mismatch", "too_old", "too_new", "bad_payload"
]


class WebhookError(Exception):
    """Base class: a webhook that must be refused with 400 and never stored."""

    reason: Reason

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignatureError(WebhookError):
    """The signature header is absent, malformed, stale or does not match any secret."""

    def __init__(self, reason: SignatureReason, message: str) -> None:
        super().__init__(reason, message)


class PayloadError(WebhookError):
    """The signature is valid but the body is not an event Kwit can read."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_payload", message)


# ---------------------------------------------------------------- payments, orders, refunds

Subject = Literal["payment", "refund"]  # what Kwit asked PayNow to create


class PaymentsError(Exception):
    """Base class: a request about orders, payments or refunds that Kwit refuses.

    `reason` is a stable code; service/ maps each subclass to its HTTP answer.
    """

    reason: str

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownOrder(PaymentsError):
    def __init__(self, order_id: str) -> None:
        super().__init__("unknown_order", f"no order {order_id!r}")
        self.order_id = order_id


class OrderExists(PaymentsError):
    """The external_ref is taken by an order that this request cannot resume."""

    def __init__(self, order_id: str) -> None:
        super().__init__("external_ref_exists", "an order with this external_ref exists")
        self.order_id = order_id


class PaynowNotConfigured(PaymentsError):
    def __init__(self) -> None:
        super().__init__("paynow_not_configured", "PayNow is not configured")


class PaynowRefused(PaymentsError):
    """PayNow refused to create the payment or refund: nothing exists there."""

    def __init__(self, subject: Subject, paynow_errors: list[str]) -> None:
        super().__init__("paynow_refused", f"PayNow refused the {subject}")
        self.subject = subject
        self.paynow_errors = paynow_errors  # PayNow's error types, never its messages


class RefundAlreadyRefused(PaymentsError):
    """A retried request for a refund that PayNow refused the first time."""

    def __init__(self, refund_id: str) -> None:
        super().__init__("paynow_refused", "PayNow refused this refund")
        self.refund_id = refund_id


class PaynowUnavailable(PaymentsError):
    """PayNow did not answer. Kwit's record is committed: the same request again resumes it."""

    def __init__(
        self, subject: Subject, *, order_id: str | None = None, refund_id: str | None = None
    ):
        super().__init__("paynow_unavailable", f"PayNow did not answer about the {subject}")
        self.subject = subject
        self.order_id = order_id
        self.refund_id = refund_id


class OrderNotPaid(PaymentsError):
    def __init__(self, order_status: str) -> None:
        super().__init__("order_not_paid", f"the order is {order_status}")
        self.order_status = order_status


class RefundAtProvider(PaymentsError):
    """Only PayNow payments are refunded through Kwit; others are refunded at their provider."""

    def __init__(self, provider: str) -> None:
        super().__init__("refund_at_provider", f"refund {provider} payments at {provider}")
        self.provider = provider


class RefundExceedsBalance(PaymentsError):
    """The amount is more than what is left to refund on the payment."""

    field = "amount_minor"  # the request field at fault

    def __init__(self, refundable_minor: int) -> None:
        super().__init__("exceeds_refundable", f"at most {refundable_minor} is left to refund")
        self.refundable_minor = refundable_minor


class RefundUnresolved(PaymentsError):
    """The refund's first PayNow call got no answer too long ago to retry it safely."""

    def __init__(self, refund_id: str) -> None:
        super().__init__("refund_unresolved", "the refund's PayNow call is unresolved")
        self.refund_id = refund_id
