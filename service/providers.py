"""Payment-provider API clients built from Settings, one per Runtime (process).

Kept out of service/runtime.py so the Runtime stays a plain bag of shared objects: the PayNow
client is built on first use and cached per Runtime here.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import requests

from service.config import Settings
from service.http import http_session
from service.runtime import Runtime
from webhooks.paynow_client import PaynowClient

__all__ = ["PAYNOW_RETRIES", "PAYNOW_TIMEOUT", "paynow_client", "paynow_for"]

# A create call runs inside an API request: connect 3 s, read 10 s, one retry on 5xx/timeouts
# (same Idempotency-Key, so a retry never creates a second object). Worst case ≈ 26 s, inside
# gunicorn's default 30 s timeout.
PAYNOW_TIMEOUT = (3.05, 10.0)
PAYNOW_RETRIES = 1
PAYNOW_BACKOFF = 0.5

_clients: dict[int, PaynowClient | None] = {}
_lock = threading.Lock()


def paynow_client(
    settings: Settings, *, http: requests.Session | None = None, **overrides: Any
) -> PaynowClient | None:
    """A PayNow v3 client (on `http`, else its own session), or None when PayNow is not set up.

    `overrides` go to PaynowClient (timeout, retries, backoff_factor).
    """
    if not (settings.paynow_api_key and settings.paynow_signature_key):
        return None
    options: dict[str, Any] = {
        "timeout": PAYNOW_TIMEOUT,
        "retries": PAYNOW_RETRIES,
        "backoff_factor": PAYNOW_BACKOFF,
    }
    options.update(overrides)
    return PaynowClient(
        http if http is not None else http_session(settings.paynow_base_url),
        api_key=settings.paynow_api_key,
        signature_key=settings.paynow_signature_key,
        base_url=settings.paynow_base_url,
        **options,
    )


def paynow_for(rt: Runtime) -> PaynowClient | None:
    """The Runtime's PayNow client, built on first use (thread-safe)."""
    key = id(rt)
    with _lock:
        if key not in _clients:
            http = http_session(rt.settings.paynow_base_url)
            client = paynow_client(rt.settings, http=http)
            _clients[key] = client
            # Forget it with the Runtime, so a new Runtime at the same address gets its own.
            weakref.finalize(rt, _forget, key, client, http)
        return _clients[key]


def _forget(key: int, client: PaynowClient | None, http: requests.Session) -> None:
    with _lock:
        _clients.pop(key, None)
    if client is not None:
        client.close()
    http.close()
