"""Provider API clients (PayNow, iFirma) built from Settings; the Runtime owns one of each.

The builders here say how a client is configured; service/runtime.py builds them on first use
and closes them with the Runtime. `paynow_for(rt)` is what views and commands call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from invoicing.ifirma import IFirmaClient
from service.config import Settings
from service.http import http_session
from webhooks.paynow_client import PaynowClient

if TYPE_CHECKING:  # service/runtime.py imports this module to build its clients
    from service.runtime import Runtime

__all__ = ["PAYNOW_RETRIES", "PAYNOW_TIMEOUT", "ifirma_client", "paynow_client", "paynow_for"]

# A create call runs inside an API request: connect 3 s, read 10 s, one retry on 5xx/timeouts
# (same Idempotency-Key, so a retry never creates a second object). Worst case ≈ 26 s, inside
# gunicorn's default 30 s timeout.
PAYNOW_TIMEOUT = (3.05, 10.0)
PAYNOW_RETRIES = 1
PAYNOW_BACKOFF = 0.5


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


def ifirma_client(
    settings: Settings, *, http: requests.Session | None = None
) -> IFirmaClient | None:
    """An iFirma client (on `http`, else its own session), or None when iFirma is not set up."""
    if not (settings.ifirma_user and settings.ifirma_invoice_key):
        return None
    keys = {"faktura": settings.ifirma_invoice_key}
    if settings.ifirma_abonent_key:
        keys["abonent"] = settings.ifirma_abonent_key
    return IFirmaClient(
        http if http is not None else http_session(settings.ifirma_base_url),
        user=settings.ifirma_user,
        keys=keys,
        base_url=settings.ifirma_base_url,
        timeout=(5.0, settings.ifirma_timeout),
    )


def paynow_for(rt: Runtime) -> PaynowClient | None:
    """The Runtime's PayNow client (built on first use), or None when PayNow is not set up."""
    return rt.paynow()
