"""The PayNow emulator's own signing code, written apart from ``webhooks.paynow_client``.

The v3 request signature is rebuilt by hand the way the vendor's JavaScript reference signer
(``JSON.stringify``) writes it, so a bug in Kwit's client signer shows up as a 401 here instead
of being mirrored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def js_string(text: str) -> str:
    """Quote ``text`` exactly as ``JSON.stringify`` does (non-ASCII stays literal)."""
    out = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def request_signature(
    signature_key: str, headers: Mapping[str, str], params: Mapping[str, list[str]], body: str
) -> str:
    """The v3 Signature PayNow expects for a request with these signed headers/query/body."""
    head = ",".join(f"{js_string(k)}:{js_string(v)}" for k, v in sorted(headers.items()))
    query = ",".join(
        f"{js_string(k)}:[{','.join(js_string(v) for v in values)}]"
        for k, values in sorted(params.items())
    )
    text = '{"headers":{' + head + '},"parameters":{' + query + '},"body":' + js_string(body) + "}"
    mac = hmac.new(signature_key.encode(), text.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def notification_signature(signature_key: str, body: bytes) -> str:
    """PayNow signs notifications over the raw body bytes only (no v3 envelope)."""
    return base64.b64encode(
        hmac.new(signature_key.encode(), body, hashlib.sha256).digest()
    ).decode()


def new_id() -> str:
    """A payment/refund id in PayNow's format, e.g. ``NOLV-8F9-08K-WGD``."""
    parts = [4, 3, 3, 3]
    return "-".join("".join(secrets.choice(_ID_ALPHABET) for _ in range(n)) for n in parts)
