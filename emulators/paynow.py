"""A fake PayNow (mBank) v3 API + paywall for tests, demos and chaos runs.

It checks Api-Key and the v3 Signature like PayNow, honours Idempotency-Key, sends signed
notifications to ``notify_url``, and can misbehave on request (POST /__emulator__/faults).
Refunds go NEW → PENDING → SUCCESSFUL: each GET /v3/refunds/{id}/status moves one step first
(turn off with the ``refund_auto_advance`` fault), or POST /__emulator__/refunds/{id}/advance.

Control API: GET /__emulator__/state, POST /__emulator__/faults (switches: see ``Faults``),
POST /__emulator__/reset (forget everything), POST /__emulator__/payments/{id}/status
{"status": …} (force + notify), POST /__emulator__/notifications/redeliver (resend every
notification never answered 2xx). The paywall is GET /paywall/{id}, with forms posting to
/paywall/{id}/pay and /reject; without the form's ``via=paywall`` field these answer JSON.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from emulators.paynow_page import paywall_html, result_html
from emulators.paynow_sign import request_signature
from emulators.paynow_state import ApiError, EmulatorState, Payment, utc_now

__all__ = ["create_app", "serve", "start_in_thread"]

log = logging.getLogger(__name__)

CURRENCIES = ("PLN", "EUR", "USD", "GBP", "CZK")
REFUND_REASONS = ("RMA", "REFUND_BEFORE_14", "REFUND_AFTER_14", "OTHER")
MAX_IDEMPOTENCY_KEY = 45


def create_app(
    *,
    api_key: str,
    signature_key: str,
    notify_url: str | None,
    public_url: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    notify_timeout: tuple[float, float] = (3.0, 10.0),
) -> Flask:
    """Build the emulator app; its state is ``app.extensions["paynow_emulator"]``."""
    app = Flask(__name__)
    state = EmulatorState(
        signature_key=signature_key,
        notify_url=notify_url,
        clock=clock,
        notify_timeout=notify_timeout,
    )
    app.extensions["paynow_emulator"] = state

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> tuple[Response, int]:
        return jsonify(exc.envelope()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if not request.path.startswith("/v3/"):
            return exc
        kind = "NOT_FOUND" if exc.code == 404 else "VALIDATION_ERROR"
        return api_error(ApiError(exc.code or 400, kind, exc.description or kind))

    @app.before_request
    def guard() -> None:
        if not request.path.startswith("/v3/"):
            return
        state.bump("api_requests")
        if state.take("fail_n"):
            state.bump("injected_failures")
            raise ApiError(503, "SYSTEM_TEMPORARILY_UNAVAILABLE", "injected failure")
        try:
            _verify(api_key, signature_key)
        except ApiError:
            state.bump("auth_failures")
            raise

    @app.post("/v3/payments")
    def create_payment() -> tuple[Response, int]:
        key = _idempotency_key()
        raw = request.get_data()
        fields = _payment_fields(_json_body(raw))

        def create() -> tuple[int, dict[str, Any]]:
            payment = state.add_payment(**fields)
            host = (public_url or request.host_url).rstrip("/")
            url = f"{host}/paywall/{payment.id}"
            return 201, {"redirectUrl": url, "paymentId": payment.id, "status": payment.status}

        status, payload = state.idempotent("payments", key, raw, create)
        if state.take("lose_create_response"):
            # The payment exists, but the merchant never learns its id: a retry must find it.
            state.bump("lost_create_responses")
            raise ApiError(500, "SYSTEM_TEMPORARILY_UNAVAILABLE", "response lost (emulated)")
        return jsonify(payload), status

    @app.get("/v3/payments/<payment_id>/status")
    def payment_status(payment_id: str) -> Response:
        with state.lock:
            payment = state.payment(payment_id)
            return jsonify(paymentId=payment.id, status=payment.status)

    @app.post("/v3/payments/<payment_id>/refunds")
    def create_refund(payment_id: str) -> tuple[Response, int]:
        key = _idempotency_key()
        raw = request.get_data()
        amount, reason = _refund_fields(_json_body(raw))

        def create() -> tuple[int, dict[str, Any]]:
            refund = state.add_refund(payment_id, amount, reason)
            return 201, {"refundId": refund.id, "status": refund.status}

        status, payload = state.idempotent(f"refunds:{payment_id}", key, raw, create)
        return jsonify(payload), status

    @app.get("/v3/refunds/<refund_id>/status")
    def refund_status(refund_id: str) -> Response:
        with state.lock:
            refund = state.poll_refund(refund_id)
            body = {"refundId": refund.id, "status": refund.status}
            if refund.failure_reason:
                body["failureReason"] = refund.failure_reason
            return jsonify(body)

    @app.post("/v3/refunds/<refund_id>/cancel")
    def cancel_refund(refund_id: str) -> tuple[str, int]:
        state.cancel_refund(refund_id)
        return "", 200

    @app.get("/paywall/<payment_id>")
    def paywall(payment_id: str) -> str:
        with state.lock:
            return paywall_html(state.payment(payment_id))

    @app.post("/paywall/<payment_id>/pay")
    def pay(payment_id: str) -> Any:
        return _finish(state, payment_id, "CONFIRMED")

    @app.post("/paywall/<payment_id>/reject")
    def reject(payment_id: str) -> Any:
        return _finish(state, payment_id, "REJECTED")

    _add_control_routes(app, state)
    return app


def _add_control_routes(app: Flask, state: EmulatorState) -> None:
    """The /__emulator__/ endpoints: state, faults, forced transitions."""

    @app.get("/__emulator__/state")
    def show_state() -> Response:
        return jsonify(state.snapshot())

    @app.post("/__emulator__/faults")
    def set_faults() -> tuple[Response, int]:
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return jsonify(error="expected a JSON object"), 400
        with state.lock:
            try:
                state.faults.update(changes)
            except ValueError as exc:
                return jsonify(error=str(exc)), 400
            return jsonify(state.snapshot()["faults"]), 200

    @app.post("/__emulator__/reset")
    def reset_all() -> Response:
        state.reset()
        return jsonify(state.snapshot())

    @app.post("/__emulator__/payments/<payment_id>/status")
    def force_status(payment_id: str) -> Response:
        status = (request.get_json(silent=True) or {}).get("status")
        if not isinstance(status, str) or not status:
            raise ApiError(400, "VALIDATION_ERROR", "status: required string")
        batch = state.move(payment_id, [status])
        state.deliver(batch)
        return _result_json(state, state.payment(payment_id), batch)

    @app.post("/__emulator__/refunds/<refund_id>/advance")
    def advance_refund(refund_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        refund = state.advance_refund(refund_id, body.get("status"), body.get("failureReason"))
        return jsonify(refund.public())

    @app.post("/__emulator__/notifications/redeliver")
    def redeliver() -> Response:
        batch = state.failed_notifications()
        state.deliver(batch)
        return jsonify(redelivered=len(batch))


def _verify(api_key: str, signature_key: str) -> None:
    """Check Api-Key and the v3 Signature the way PayNow does, or raise a 401 envelope."""
    given = request.headers.get("Api-Key", "")
    if not given or not hmac.compare_digest(_b(given), _b(api_key)):
        raise ApiError(401, "UNAUTHORIZED", "unknown or missing Api-Key")
    signature = request.headers.get("Signature", "")
    if not signature:
        raise ApiError(401, "SIGNATURE_MISSING", "Signature header is required")
    signed = {"Api-Key": given}
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None:
        signed["Idempotency-Key"] = idempotency_key
    expected = request_signature(
        signature_key, signed, request.args.to_dict(flat=False), request.get_data(as_text=True)
    )
    if not hmac.compare_digest(_b(signature), _b(expected)):
        raise ApiError(401, "VERIFICATION_FAILED", "signature verification failed")


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise ApiError(400, "IDEMPOTENCY_KEY_MISSING", "Idempotency-Key header is required")
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, "VALIDATION_ERROR", "Idempotency-Key: at most 45 characters")
    return key


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "VALIDATION_ERROR", "body: malformed JSON")
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "body: must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ApiError(400, "VALIDATION_ERROR", f"{name}: required string of 1..{limit} chars")
    return value


def _payment_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a PayNow v3 create-payment body; messages never echo buyer data."""
    amount = body.get("amount")
    if isinstance(amount, str) and amount.isdigit():
        amount = int(amount)  # the PrestaShop plugin sends strings and PayNow accepts them
    if type(amount) is not int:
        raise ApiError(400, "VALIDATION_ERROR", "amount: required integer (minor units)")
    if amount < 100:
        raise ApiError(400, "PAYMENT_AMOUNT_TOO_SMALL", "amount: at least 100")
    if amount > 100_000_000:
        raise ApiError(400, "PAYMENT_AMOUNT_TOO_LARGE", "amount: at most 100000000")
    currency = body.get("currency", "PLN")
    if currency not in CURRENCIES:
        raise ApiError(400, "VALIDATION_ERROR", f"currency: invalid field value ({currency})")
    buyer = body.get("buyer")
    if not isinstance(buyer, dict):
        raise ApiError(400, "VALIDATION_ERROR", "buyer: required object")
    email = buyer.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 50:
        raise ApiError(400, "VALIDATION_ERROR", "buyer.email: invalid field value")
    return {
        "amount": amount,
        "currency": currency,
        "external_id": _text(body, "externalId", 100, required=True),
        "description": _text(body, "description", 255, required=True),
        "continue_url": _text(body, "continueUrl", 1000, required=False),
    }


def _refund_fields(body: dict[str, Any]) -> tuple[int, str | None]:
    amount = body.get("amount")
    if type(amount) is not int or not 0 < amount < 10**10:
        raise ApiError(400, "VALIDATION_ERROR", "amount: positive integer, at most 10 digits")
    reason = body.get("reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise ApiError(400, "VALIDATION_ERROR", f"reason: invalid field value ({reason})")
    return amount, reason


def _finish(state: EmulatorState, payment_id: str, final: str) -> Any:
    """Pay or Reject on the paywall: NEW → PENDING → final, one notification per step."""
    with state.lock:
        payment = state.payment(payment_id)
        if payment.status == "NEW":
            steps = ["PENDING", final]
        elif payment.status == "PENDING":
            steps = [final]
        else:
            raise ApiError(409, "CONFLICT", f"payment is {payment.status}")
        batch = state.move(payment_id, steps)
    state.deliver(batch)
    if request.form.get("via") != "paywall":
        return _result_json(state, payment, batch)
    if payment.continue_url:
        # Like PayNow: back to the shop with the id and status in the query string.
        parts = urlsplit(payment.continue_url)
        query = [*parse_qsl(parts.query), ("paymentId", payment.id), ("paymentStatus", final)]
        return redirect(urlunsplit(parts._replace(query=urlencode(query))), code=303)
    return result_html(payment)


def _result_json(state: EmulatorState, payment: Payment, batch: list[Any]) -> Response:
    with state.lock:
        notes = [
            {"status": n.status, "modifiedAt": n.modified_at, "deliveries": list(n.deliveries)}
            for n in batch
        ]
        return jsonify(paymentId=payment.id, status=payment.status, notifications=notes)


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def serve(host: str = "127.0.0.1", port: int = 8095, **kw: Any) -> None:
    """Run the emulator until interrupted (``kwit emulate paynow``)."""
    server = make_server(host, port, create_app(**kw), threaded=True)
    log.info("PayNow emulator on http://%s:%s", host, server.server_port)
    server.serve_forever()


def start_in_thread(
    port: int = 0, *, host: str = "127.0.0.1", **kw: Any
) -> tuple[BaseWSGIServer, str]:
    """Serve on a daemon thread; stop with ``server.shutdown()`` then ``server.server_close()``."""
    server = make_server(host, port, create_app(**kw), threaded=True)
    # poll_interval 0.05 s: shutdown() returns quickly, which matters for test teardown.
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="paynow-emulator", daemon=True
    ).start()
    return server, f"http://{host}:{server.server_port}"
