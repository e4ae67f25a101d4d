"""The iFirma client's typed errors, and how an answer or a transport failure maps to them.

Only ``Kod == 0`` is success, whatever the HTTP status; the Kod values and their meaning are in
docs/protocols/ifirma.md (responses and errors).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

__all__ = [
    "AUTH_KODS",
    "VALIDATION_KODS",
    "IFirmaAuthError",
    "IFirmaError",
    "IFirmaRateLimitError",
    "IFirmaTransientError",
    "IFirmaValidationError",
    "error_for_kod",
    "is_already_sent",
    "never_sent",
]

VALIDATION_KODS = frozenset({101, 102, 200, 201, 202})
AUTH_KODS = frozenset({400, 401, 402, 403, 499, 500})


class IFirmaError(Exception):
    """Any failed iFirma call. ``kod`` is iFirma's ``Kod`` (None when there was none)."""

    def __init__(self, message: str, *, kod: int | None = None, http_status: int | None = None):
        super().__init__(f"iFirma Kod {kod}: {message}" if kod is not None else message)
        self.kod = kod
        self.message = message
        self.http_status = http_status


class IFirmaValidationError(IFirmaError):
    """Kod 101/102/200/201/202: the request was understood and refused; fix the data."""


class IFirmaAuthError(IFirmaError):
    """Kod 400-403/499/500 or HTTP 401/403: credentials, key or account permissions."""


class IFirmaRateLimitError(IFirmaError):
    """HTTP 429 (100 requests/minute per user). ``retry_after`` in seconds when sent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class IFirmaTransientError(IFirmaError):
    """Kod 100, HTTP 5xx, timeouts, broken connections: try again later.

    ``outcome_unknown`` is True when the request may have reached iFirma (read timeout,
    reset after sending, 5xx, Kod 100): a create must be reconciled before any retry.
    """

    def __init__(self, message: str, *, outcome_unknown: bool, **kw: Any):
        super().__init__(message, **kw)
        self.outcome_unknown = outcome_unknown


def error_for_kod(kod: int, message: str, http_status: int | None) -> IFirmaError:
    """The typed error for a non-zero Kod (Kod 100 is iFirma's own "try again")."""
    if kod == 100:
        return IFirmaTransientError(message, kod=kod, http_status=http_status, outcome_unknown=True)
    if kod in VALIDATION_KODS:
        return IFirmaValidationError(message, kod=kod, http_status=http_status)
    if kod in AUTH_KODS:
        return IFirmaAuthError(message, kod=kod, http_status=http_status)
    return IFirmaError(message, kod=kod, http_status=http_status)


def never_sent(exc: BaseException) -> bool:
    """True only when the failure happened while connecting, i.e. no byte reached iFirma."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:  # walk args / reason / cause chains: requests wraps urllib3 wraps socket errors
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NewConnectionError | ConnectTimeoutError):
            return True
        stack.extend([*e.args, getattr(e, "reason", None), e.__cause__, e.__context__])
    return False


def is_already_sent(message: str) -> bool:
    """True when a KSeF send was refused because the invoice had already been sent."""
    # iFirma's wording is unverified (the emulator answers "Faktura została już wysłana do KSeF");
    # compare without diacritics so "juz wyslana" and "już wysłana" both match.
    folded = unicodedata.normalize("NFKD", message.lower()).replace("ł", "l")
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.search(r"juz\s+(zostala\s+)?wyslan|already\s+sent", plain) is not None
