"""PayNow (mBank, paynow.pl) v3 API client: signed requests, typed errors, idempotent retries.

Protocol notes: docs/protocols/paynow.md (endpoints, request signature, test vectors).

Retries are done by urllib3 ``Retry`` on an ``HTTPAdapter`` mounted on the injected session for
``base_url``: GET and POST, on connection/read errors and 500/502/503/504, with exponential
backoff (0 s, 2·f, 4·f … for backoff_factor f). Retry-After is deliberately not obeyed, so 429 is
never retried here and never blocks a worker; it surfaces as ``PaynowRateLimitError``. urllib3 resends the same prepared request, so the same body, ``Idempotency-Key`` and
``Signature`` go out on every attempt. Every POST sent through that adapter carries a meaningful
idempotency key (create payment, create refund). ``cancel_refund`` has no meaningful key, so it
goes through a private second adapter that only retries failed *connects* (the request never
left) and never a sent request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

__all__ = [
    "PaynowAuthError",
    "PaynowClient",
    "PaynowConflictError",
    "PaynowError",
    "PaynowNotFoundError",
    "PaynowRateLimitError",
    "PaynowTransientError",
    "PaynowValidationError",
    "idempotency_key_for",
    "signature_v3",
]

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 45
_RETRY_STATUSES = (500, 502, 503, 504)
_SAFE_KEY = re.compile(r"[A-Za-z0-9._:-]+")


def signature_v3(
    *,
    api_key: str,
    signature_key: str,
    idempotency_key: str,
    body: str = "",
    query: Mapping[str, str | Sequence[str]] | None = None,
) -> str:
    """Return the v3 ``Signature`` header value for one request.

    See docs/protocols/paynow.md, request signature (and its test vectors).

    ``body`` must be the exact text sent. ``query`` values are signed as arrays of strings.
    """
    parameters: dict[str, list[str]] = {}
    for name, value in sorted((query or {}).items()):
        # A bare str is a Sequence too; PayNow wants every value wrapped in a list (R3 vs R3-alt).
        parameters[name] = [value] if isinstance(value, str) else [str(v) for v in value]
    envelope = {
        "headers": {"Api-Key": api_key, "Idempotency-Key": idempotency_key},
        # An empty dict serialises as {}: the server rejects [] (docs/protocols/paynow.md, R1).
        "parameters": parameters,
        "body": body,
    }
    # ensure_ascii=False matches JSON.stringify in the vendor's reference signer (vector U2).
    message = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    digest = hmac.new(signature_key.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def idempotency_key_for(kind: str, object_id: str) -> str:
    """Derive a stable Idempotency-Key (≤ 45 chars) so retries of one create hit one object."""
    key = f"kwit-{kind}-{object_id}"
    if len(key) <= MAX_IDEMPOTENCY_KEY and _SAFE_KEY.fullmatch(key):
        return key
    # Too long or not header-safe: hash it, keeping a readable prefix for support tickets.
    prefix = f"kwit-{kind[:8]}-h"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return prefix + digest[: MAX_IDEMPOTENCY_KEY - len(prefix)]


class PaynowError(Exception):
    """A PayNow call failed; ``errors`` is the envelope's list of {errorType, message}."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.errors: list[dict[str, str]] = errors or []
        self.error_type: str | None = self.errors[0].get("errorType") if self.errors else None

    @property
    def error_types(self) -> list[str]:
        """Only the envelope's error types: its messages can echo field values (an e-mail)."""
        return [e["errorType"] for e in self.errors if e.get("errorType")]


class PaynowValidationError(PaynowError):
    """400: the request was refused as invalid (amount, method, refund balance …)."""


class PaynowAuthError(PaynowError):
    """401/403: wrong Api-Key or Signature, or the shop may not do this."""


class PaynowNotFoundError(PaynowError):
    """404: no such payment or refund."""


class PaynowConflictError(PaynowError):
    """409: the object is in a state that forbids the operation."""


class PaynowRateLimitError(PaynowError):
    """429: slow down; ``retry_after`` is the server's hint in seconds, when given."""

    retry_after: float | None = None


class PaynowTransientError(PaynowError):
    """5xx, SYSTEM_TEMPORARILY_UNAVAILABLE, connection error or timeout: safe to retry later."""


_BY_ERROR_TYPE: dict[str, type[PaynowError]] = {
    "VALIDATION_ERROR": PaynowValidationError,
    "PAYMENT_AMOUNT_TOO_SMALL": PaynowValidationError,
    "PAYMENT_AMOUNT_TOO_LARGE": PaynowValidationError,
    "PAYMENT_METHOD_NOT_AVAILABLE": PaynowValidationError,
    "INSUFFICIENT_BALANCE_FUNDS": PaynowValidationError,
    "IDEMPOTENCY_KEY_MISSING": PaynowValidationError,
    "UNAUTHORIZED": PaynowAuthError,
    "FORBIDDEN": PaynowAuthError,
    "VERIFICATION_FAILED": PaynowAuthError,
    "SIGNATURE_MISSING": PaynowAuthError,
    "NOT_FOUND": PaynowNotFoundError,
    "CONFLICT": PaynowConflictError,
    "RATE_LIMIT_REACHED": PaynowRateLimitError,
    "SYSTEM_TEMPORARILY_UNAVAILABLE": PaynowTransientError,
}
_BY_STATUS: dict[int, type[PaynowError]] = {
    400: PaynowValidationError,
    401: PaynowAuthError,
    403: PaynowAuthError,
    404: PaynowNotFoundError,
    409: PaynowConflictError,
    422: PaynowValidationError,
    429: PaynowRateLimitError,
}


def error_from_response(response: requests.Response) -> PaynowError:
    """Map a non-2xx response (PayNow error envelope or not) to a typed error."""
    errors: list[dict[str, str]] = []
    try:
        payload = response.json()
        raw = payload.get("errors") if isinstance(payload, dict) else None
        if isinstance(raw, list):
            errors = [
                {"errorType": str(e.get("errorType", "")), "message": str(e.get("message", ""))}
                for e in raw
                if isinstance(e, dict)
            ]
    except ValueError:
        pass  # e.g. an HTML page from a proxy; the status code still classifies it
    status = response.status_code
    first = errors[0]["errorType"] if errors else None
    if status >= 500:
        cls: type[PaynowError] = PaynowTransientError
    else:
        cls = _BY_ERROR_TYPE.get(first or "") or _BY_STATUS.get(status, PaynowError)
    # Messages can echo field values (buyer e-mail), so only types go into str(exc).
    types = ",".join(e["errorType"] for e in errors) or "no error envelope"
    exc = cls(f"PayNow HTTP {status}: {types}", status_code=status, errors=errors)
    if isinstance(exc, PaynowRateLimitError):
        try:
            exc.retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            exc.retry_after = None
    return exc


class PaynowClient:
    """PayNow v3 API client. The session is injected; retries are mounted on it for base_url."""

    def __init__(
        self,
        http: requests.Session,
        *,
        api_key: str,
        signature_key: str,
        base_url: str = "https://api.paynow.pl",
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 3,
        backoff_factor: float = 0.5,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._signature_key = signature_key
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        idempotent = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=_RETRY_STATUSES,
            backoff_factor=backoff_factor,
            raise_on_status=False,  # the last 5xx comes back as a response and is mapped below
            # Else urllib3 retries 429 (and sleeps Retry-After seconds) behind our back; a 429
            # goes to the caller instead, who can reschedule rather than block a worker.
            respect_retry_after_header=False,
        )
        http.mount(self._base_url + "/", HTTPAdapter(max_retries=idempotent))
        # Retries a refused connect only: nothing was sent, so nothing can be done twice.
        connect_only = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=0,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"GET"}),  # moot: read=0 and status=0
            backoff_factor=backoff_factor,
            raise_on_status=False,
        )
        self._send_once = HTTPAdapter(max_retries=connect_only)

    def close(self) -> None:
        """Release the private adapter's pool (the injected session is the caller's to close)."""
        self._send_once.close()

    def create_payment(
        self,
        *,
        amount_minor: int,
        currency: str,
        external_id: str,
        description: str,
        buyer_email: str,
        continue_url: str | None = None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """POST /v3/payments → {redirectUrl, paymentId, status}."""
        body: dict[str, Any] = {
            "amount": amount_minor,
            "currency": currency,
            "externalId": external_id,
            "description": description,
            "buyer": {"email": buyer_email},
        }
        if continue_url is not None:
            body["continueUrl"] = continue_url
        return self._request("POST", "/v3/payments", body=body, idempotency_key=idempotency_key)

    def payment_status(self, payment_id: str) -> dict[str, Any]:
        """GET /v3/payments/{id}/status → {paymentId, status}."""
        return self._request("GET", f"/v3/payments/{_segment(payment_id)}/status")

    def create_refund(
        self,
        payment_id: str,
        *,
        amount_minor: int,
        reason: str | None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """POST /v3/payments/{id}/refunds → {refundId, status}."""
        body: dict[str, Any] = {"amount": amount_minor}
        if reason is not None:
            body["reason"] = reason
        path = f"/v3/payments/{_segment(payment_id)}/refunds"
        return self._request("POST", path, body=body, idempotency_key=idempotency_key)

    def refund_status(self, refund_id: str) -> dict[str, Any]:
        """GET /v3/refunds/{id}/status → {refundId, status, failureReason?}."""
        return self._request("GET", f"/v3/refunds/{_segment(refund_id)}/status")

    def cancel_refund(self, refund_id: str) -> None:
        """POST /v3/refunds/{id}/cancel (only NEW refunds can be cancelled). Not retried."""
        self._request("POST", f"/v3/refunds/{_segment(refund_id)}/cancel", retry=False)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> Any:
        """Sign, send and decode one call; raise a PaynowError subclass on failure."""
        # The key is signed, so every v3 call carries one; reads get a throwaway key.
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii():
            raise ValueError(f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} ASCII characters")
        # ASCII-only body (vector U1): identical under either envelope escaping.
        text = "" if body is None else json.dumps(body, ensure_ascii=True, separators=(",", ":"))
        headers = {
            "Api-Key": self._api_key,
            "Idempotency-Key": key,
            "Signature": signature_v3(
                api_key=self._api_key,
                signature_key=self._signature_key,
                idempotency_key=key,
                body=text,
            ),
            "Accept": "application/json",
            "User-Agent": "kwit",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = requests.Request(
            method, self._base_url + path, headers=headers, data=text.encode("ascii") or None
        )
        prepared = self._http.prepare_request(request)
        # send() skips what Session.request adds from the environment (proxies, CA bundle).
        settings = self._http.merge_environment_settings(prepared.url, {}, None, None, None)
        try:
            if retry:
                response = self._http.send(prepared, timeout=self._timeout, **settings)
            else:
                response = self._send_once.send(prepared, timeout=self._timeout, **settings)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            log.warning("paynow %s %s failed: %s", method, path, type(exc).__name__)
            raise PaynowTransientError(f"PayNow unreachable: {type(exc).__name__}") from exc
        log.info("paynow %s %s -> %s", method, path, response.status_code)
        if not 200 <= response.status_code < 300:
            raise error_from_response(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise PaynowError(
                "PayNow answered with a non-JSON body", status_code=response.status_code
            ) from exc


def _segment(value: str) -> str:
    """Quote an id for use as one path segment (ids are [A-Z0-9-], but never trust input)."""
    if not value:
        raise ValueError("empty PayNow id")
    return quote(value, safe="")
