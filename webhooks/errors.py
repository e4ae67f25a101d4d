"""Typed webhook errors. The reason is a stable code that feeds logs, metrics and the 400 answer."""

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
