"""mBank PayNow notifications: signature verification and normalisation into a ProviderEvent.

Pure functions, no Flask. A notification is signed with base64(HMAC-SHA256(Signature-Key, raw
body)); the v3 request envelope is not used for notifications. See docs/protocols/paynow.md,
notification signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from webhooks.errors import PayloadError, SignatureError
from webhooks.events import EventKind, Provider, ProviderEvent

__all__ = ["SIGNATURE_HEADER", "normalise", "sign", "signature_header", "verify"]

SIGNATURE_HEADER = "Signature"

# PHP trim()'s default set: the vendor's SDK and plugins verify HMAC(trim(php://input)).
_PHP_TRIM = b" \t\n\r\0\x0b"
_DIGEST_SIZE = hashlib.sha256().digest_size

# Upper bounds on what goes into the dedupe key; PayNow's own values are far shorter
# (paymentId is 16 characters, externalId at most 100, modifiedAt an ISO timestamp).
_MAX_LENGTH = {"paymentId": 64, "externalId": 100, "status": 40, "modifiedAt": 40}


def verify(payload: bytes, signature: str | None, keys: Sequence[str]) -> dict[str, Any]:
    """Return the parsed notification once `signature` matches `payload` under one of `keys`.

    The HMAC is computed over the raw bytes, and also over the whitespace-trimmed bytes as the
    vendor plugins do. Several keys allow rotation. Raises SignatureError (no_signature,
    malformed_header, mismatch) before any JSON parsing, then PayloadError.
    """
    _check_keys(keys)
    if not isinstance(payload, bytes | bytearray):
        # A str here means the body was decoded or re-serialised: its signature cannot be trusted.
        raise TypeError("payload must be the raw request body as bytes")
    if signature is None or not signature.strip():
        raise SignatureError("no_signature", "Signature header is missing or empty")
    try:
        claimed = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
        raise SignatureError("malformed_header", "Signature is not valid base64") from exc
    if len(claimed) != _DIGEST_SIZE:
        raise SignatureError("malformed_header", "Signature is not an HMAC-SHA256 digest")
    raw = bytes(payload)
    bodies = [raw]
    if raw.strip(_PHP_TRIM) != raw:
        bodies.append(raw.strip(_PHP_TRIM))
    if not any(hmac.compare_digest(_digest(k, b), claimed) for k in keys for b in bodies):
        raise SignatureError("mismatch", "Signature matches no configured key")
    return _parse_object(raw)


def sign(payload: bytes, key: str) -> str:
    """The `Signature` header value PayNow would send for `payload`."""
    return base64.b64encode(_digest(key, payload)).decode("ascii")


def signature_header(headers: Mapping[str, str]) -> str | None:
    """The `Signature` header, looked up case-insensitively (plain dicts are case-sensitive)."""
    value = headers.get(SIGNATURE_HEADER)
    if value is not None:
        return value
    # .items() rather than iteration: werkzeug's Headers iterates as (name, value) pairs.
    for name, value in headers.items():
        if name.lower() == "signature":
            return value
    return None


def normalise(notification: Mapping[str, Any]) -> ProviderEvent:
    """Turn a verified notification into a PAYMENT_STATUS event.

    `event_key` is `paymentId:status:modifiedAt`, so a redelivery dedupes while a real change does
    not. Status and modifiedAt are kept exactly as received: modifiedAt carries no timezone and is
    only ever compared with other values for the same payment. Unknown statuses are normalised
    too; the state machine ignores them.
    """
    if not isinstance(notification, Mapping):
        raise PayloadError("notification is not a JSON object")
    payment_id, external_id, status, modified_at = (
        _field(notification, name) for name in ("paymentId", "externalId", "status", "modifiedAt")
    )
    return ProviderEvent(
        provider=Provider.PAYNOW,
        event_key=f"{payment_id}:{status}:{modified_at}",
        event_type=status,
        kind=EventKind.PAYMENT_STATUS,
        provider_payment_id=payment_id,
        status=status,
        modified_at=modified_at,
        order_ref=external_id,
    )


def _field(notification: Mapping[str, Any], name: str) -> str:
    value = notification.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"notification.{name} is missing or not a string")
    if len(value) > _MAX_LENGTH[name]:
        raise PayloadError(f"notification.{name} is too long")
    return value


def _digest(key: str, payload: bytes) -> bytes:
    return hmac.new(key.encode("utf-8"), payload, hashlib.sha256).digest()


def _check_keys(keys: Sequence[str]) -> None:
    # A bare str is a Sequence[str] too; iterating it would try each character as a key.
    if isinstance(keys, str) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError("keys must be a non-empty list of non-empty strings")


def _parse_object(payload: bytes) -> dict[str, Any]:
    """Parse a UTF-8 JSON object; anything else is a PayloadError (a 400, never a 500)."""
    try:
        # Decode explicitly: json.loads(bytes) would also guess UTF-16/32.
        data = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise PayloadError(f"body is not UTF-8 JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
