"""POST /webhooks/stripe and /webhooks/paynow: verify, record, commit, then answer 200."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from models import utcnow
from service import metrics
from service.db import get_session, runtime
from service.errors import problem
from service.worker import dispatch
from webhooks import paynow, stripe
from webhooks.errors import WebhookError
from webhooks.events import ProviderEvent
from webhooks.ingest import record

log = logging.getLogger("kwit.webhooks")

bp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/webhooks",
    description="Provider webhooks, authenticated by their HMAC signatures (no API key)",
)


@bp.post("/stripe")
@bp.doc(
    responses={
        200: {"description": "recorded: outcome applied, duplicate, stale or ignored"},
        400: {"description": "bad signature or payload"},
    }
)
def stripe_webhook() -> Response:
    """Receive a Stripe event (`Stripe-Signature`, v1 HMAC-SHA256 over the raw body)."""
    settings = runtime().settings

    def verify(body: bytes) -> ProviderEvent:
        event = stripe.verify(
            body,
            request.headers.get("Stripe-Signature"),
            settings.stripe_webhook_secrets,
            now=int(time.time()),
            tolerance=settings.stripe_tolerance,
        )
        return stripe.normalise(event)

    return _receive("stripe", bool(settings.stripe_webhook_secrets), "Stripe-Signature", verify)


@bp.post("/paynow")
@bp.doc(
    responses={
        200: {"description": "recorded: outcome applied, duplicate, stale or ignored"},
        400: {"description": "bad signature or payload"},
    }
)
def paynow_webhook() -> Response:
    """Receive a PayNow notification (`Signature`, base64 HMAC-SHA256 over the raw body)."""
    key = runtime().settings.paynow_signature_key

    def verify(body: bytes) -> ProviderEvent:
        notification = paynow.verify(body, paynow.signature_header(request.headers), [key or ""])
        return paynow.normalise(notification)

    return _receive("paynow", bool(key), "Signature", verify)


def _receive(
    provider: str, configured: bool, header: str, verify: Callable[[bytes], ProviderEvent]
) -> Response:
    started = time.perf_counter()
    try:
        return _handle(provider, configured, header, verify)
    finally:
        metrics.WEBHOOK_LATENCY.labels(provider=provider).observe(time.perf_counter() - started)


def _handle(
    provider: str, configured: bool, header: str, verify: Callable[[bytes], ProviderEvent]
) -> Response:
    if not configured:
        log.error("webhook received but no secret is configured", extra={"provider": provider})
        return problem(503, f"{provider} webhooks are not configured on this Kwit.")
    if request.mimetype != "application/json":
        return _refuse(provider, 415, "content_type", "The body must be application/json.")
    if not request.headers.get(header):
        # Checked before the body is read or anything touches the database.
        return _refuse(provider, 400, "no_signature", f"The {header} header is missing.")
    body = request.get_data(cache=False)
    try:
        event = verify(body)
    except WebhookError as exc:
        return _refuse(provider, 400, exc.reason, _explain(exc.reason))
    rt = runtime()
    if rt.recent_events.seen(provider, event.event_key):
        # Recorded and committed by this process moments ago: a retry storm needs no database.
        metrics.WEBHOOKS.labels(provider=provider, outcome="duplicate", reason="recent").inc()
        return jsonify(outcome="duplicate")
    session = get_session()
    result = record(
        session,
        rt.ingest_context,
        event,
        body_sha256=hashlib.sha256(body).hexdigest(),
        now=utcnow(),
    )
    if session.in_transaction():  # the fast path commits on its own connection
        session.commit()  # the 200 below is only ever sent after this commit
    rt.recent_events.add(provider, event.event_key)
    for outbox_id in result.outbox_ids:
        dispatch(rt, outbox_id, fresh=True)  # created by the commit above
    metrics.WEBHOOKS.labels(
        provider=provider, outcome=result.outcome.value, reason=result.reason or ""
    ).inc()
    body_out: dict[str, Any] = {"outcome": result.outcome.value}
    if result.reason:
        body_out["reason"] = result.reason
    return jsonify(body_out)


def _refuse(provider: str, status: int, reason: str, detail: str) -> Response:
    metrics.WEBHOOKS.labels(provider=provider, outcome="rejected", reason=reason).inc()
    # Forged or broken requests are counted and logged, never stored, and never echoed back.
    log.warning("webhook rejected", extra={"provider": provider, "reason": reason})
    return problem(status, detail, reason=reason)


_EXPLANATIONS = {
    "malformed_header": "The signature header is malformed.",
    "no_signature": "The signature header carries no usable signature.",
    "mismatch": "The signature does not match the body and any configured secret.",
    "too_old": "The signature timestamp is outside the tolerance (too old).",
    "too_new": "The signature timestamp is in the future.",
    "bad_payload": "The body is not an event Kwit can read.",
}


def _explain(reason: str) -> str:
    return _EXPLANATIONS.get(reason, "The webhook was rejected.")
