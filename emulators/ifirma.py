"""Fake iFirma iapi for tests, demos and benchmarks (docs/protocols/ifirma.md, emulator).

Strict where the real API is strict: every call must carry a valid ``Authentication`` header,
bodies are validated (emulators/ifirma_rules.py) and errors come back as HTTP 200 +
``{"response":{"Kod":…}}``. The routes themselves are in emulators/ifirma_routes.py.

Signature URL: by default the emulator checks the HMAC against the URL the request arrived on
(``http://127.0.0.1:8085/iapi/…`` — what the client signed when pointed here). With
``public_base_url="https://www.ifirma.pl/iapi"`` it instead checks against that base + the path
below ``/iapi``, i.e. it pretends to be the live host (useful behind a proxy).

The HMAC is computed by hand from ``hashlib.sha1`` (RFC 2104), independent of
``invoicing.ifirma``, so a signing bug in the client cannot be mirrored here.

Control API (not part of iFirma): ``GET /__emulator__/state`` and ``POST /__emulator__/faults``;
the fault modes are listed in :mod:`emulators.ifirma_state`. Run it with
``python -m emulators.ifirma --port 8085`` or :func:`start_in_thread` in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from emulators.ifirma_routes import Reply, envelope, register_routes
from emulators.ifirma_rules import hmac_sha1_hex
from emulators.ifirma_state import FaultSpecError, State

__all__ = ["create_app", "serve", "start_in_thread"]

_HEADER = re.compile(r"IAPIS user=(?P<user>[^,\s]+), hmac-sha1=(?P<digest>[0-9a-fA-F]{40})")
_MUTATING = {"POST", "PUT"}


def _json_response(reply: Reply) -> Response:
    if reply.raw is not None:
        return Response(reply.raw, reply.status, mimetype="application/pdf")
    # Decimals are rendered via float only for output: 2-dp values round-trip exactly.
    text = json.dumps(reply.body, ensure_ascii=False, default=float)
    return Response(text, reply.status, mimetype="application/json")


def create_app(
    *,
    user: str,
    keys: Mapping[str, str],
    public_base_url: str | None = None,
    seller_nip: str = "5260250995",
    ksef_delay_gets: int = 1,
    wrap_get: bool = False,
    accounting_month: tuple[int, int] | None = None,
    documents_limit: int = 1000,
    id_as_string: bool = False,
    lose_fallback_seconds: float = 65.0,
) -> Flask:
    """Build the fake iFirma. ``accounting_month`` is ``(year, month)``, default: now in Warsaw.

    ``ksef_delay_gets``: how many single-invoice GETs still see ``WYSLANA_DO_KSEF`` after a
    send; the next GET sees ``PRZYJETA_W_KSEF`` with a NumerKSEF (0 = at the first GET).
    """
    app = Flask(__name__)
    state = State(
        seller_nip=seller_nip,
        ksef_delay_gets=ksef_delay_gets,
        accounting=accounting_month,
        documents_limit=documents_limit,
        wrap_get=wrap_get,
    )
    app.extensions["ifirma_state"] = state
    secret = {name: bytes.fromhex(k) for name, k in keys.items()}

    def auth_error(key_name: str, raw: bytes) -> Reply | None:
        match = _HEADER.fullmatch(request.headers.get("Authentication", "").strip())
        if match is None:
            return envelope(400, "Niepoprawny nagłówek autoryzacji")
        if match["user"] != user:
            return envelope(401, "Niepoprawna nazwa użytkownika")
        if key_name not in secret:
            return envelope(402, f"Brak wygenerowanego klucza autoryzacji {key_name}")
        url = request.base_url
        if public_base_url:
            url = public_base_url.rstrip("/") + request.path.removeprefix("/iapi")
        message = url.encode() + user.encode() + key_name.encode() + raw
        if not hmac.compare_digest(
            hmac_sha1_hex(secret[key_name], message), match["digest"].lower()
        ):
            return envelope(403, "Niepoprawny hash bądź kod wiadomości")
        return None

    def parse_body(raw: bytes) -> tuple[Any, Reply | None]:
        if request.method not in _MUTATING:
            return None, None
        if not request.content_type or "application/json" not in request.content_type:
            return None, envelope(102, "Brak lub niepoprawny nagłówek Content-Type")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, envelope(101, "Niepoprawne kodowanie znaków (wymagane UTF-8)")
        try:
            body = json.loads(text, parse_float=Decimal)
        except ValueError:
            return None, envelope(200, "Niepoprawna zawartość żądania (JSON)")
        if not isinstance(body, dict):
            return None, envelope(200, "Niepoprawna struktura obiektu domenowego")
        return body, None

    def lose(reply: Reply) -> Reply:
        sock = request.environ.get("werkzeug.socket")
        if sock is None:  # WSGI test client: no socket to cut, so be too slow instead
            time.sleep(lose_fallback_seconds)
            return reply
        # FIN both ways; werkzeug then fails to write and drops the request silently
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return Reply(None, raw=b"")

    def run(key_name: str, handler: Callable[..., Reply], **kwargs: Any) -> Response:
        path, method = request.path, request.method
        with state.lock:
            state.counts["requests"] += 1
            latency = state.faults.latency
            limited = state.faults.over_limit(time.monotonic())
            pre = None if limited else state.faults.take("pre", path, method)
            state.counts["rate_limited"] += limited
        if latency:
            time.sleep(latency)
        if limited:
            reply = envelope(429, "Przekroczono limit zapytań (emulator)", status=429)
            return _json_response(reply), 429, {"Retry-After": "60"}
        if pre is not None:
            kod = {"kod_201": 201}.get(pre["mode"], 100)
            status = 500 if pre["mode"] in ("fail_n", "http_500_before_commit") else 200
            return _json_response(
                envelope(kod, pre["message"] if kod == 201 else "Błąd techniczny", status)
            )
        raw = request.get_data(cache=True)
        body, error = parse_body(raw)
        error = auth_error(key_name, raw) or error
        with state.lock:
            if error is not None:
                state.counts["auth_failures"] += error.body["response"]["Kod"] >= 400
                return _json_response(error)
            reply = handler(body, **kwargs)
            post = state.faults.take("post", path, method) if reply.committed else None
            after = state.faults.take("after", path, method)
            if post is not None:
                state.counts[f"fault_{post['mode']}"] = (
                    state.counts.get(f"fault_{post['mode']}", 0) + 1
                )
        if post is not None and post["mode"] == "error_after_create":
            reply = envelope(100, "Błąd techniczny (emulator, po zapisie)", status=500)
        elif post is not None and post["mode"] == "lose_response":
            reply = lose(reply)
        elif post is not None:  # timeout_after_commit
            time.sleep(post["seconds"])
        if after is not None:
            time.sleep(after["seconds"])
        return _json_response(reply)

    def api(rule: str, key_name: str = "faktura", methods: tuple[str, ...] = ("GET",)):
        def register(handler: Callable[..., Reply]) -> Callable[..., Reply]:
            def view(**kwargs: Any) -> Response:
                return run(key_name, handler, **kwargs)

            app.add_url_rule(
                f"/iapi/{rule}", f"{handler.__name__}:{rule}", view, methods=[*methods]
            )
            return handler

        return register

    register_routes(api, state, id_as_string=id_as_string)

    @app.get("/__emulator__/state")
    def emulator_state() -> Response:
        with state.lock:
            return _json_response(Reply(state.snapshot()))

    @app.post("/__emulator__/faults")
    def emulator_faults() -> Response:
        spec = request.get_json(silent=True) or {}
        with state.lock:
            try:
                state.control(spec)
            except (FaultSpecError, TypeError, ValueError) as exc:
                return _json_response(Reply({"error": str(exc)}, 400))
            return _json_response(Reply({"ok": True, "faults": state.faults.describe()}))

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Benchmarks and tests do not want a line per request."""


def _server(host: str, port: int, quiet: bool, kwargs: dict[str, Any]) -> BaseWSGIServer:
    handler = _QuietHandler if quiet else WSGIRequestHandler
    return make_server(host, port, create_app(**kwargs), threaded=True, request_handler=handler)


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True, **kwargs: Any
) -> tuple[BaseWSGIServer, str]:
    """Run the emulator in a daemon thread; returns (server, ``http://host:port/iapi``).

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = _server(host, port, quiet, kwargs)
    threading.Thread(target=server.serve_forever, name="ifirma-emulator", daemon=True).start()
    return server, f"http://{host}:{server.port}/iapi"


def serve(host: str = "127.0.0.1", port: int = 8085, *, quiet: bool = False, **kwargs: Any) -> None:
    """Run a threaded werkzeug server until interrupted; ``kwargs`` go to :func:`create_app`."""
    server = _server(host, port, quiet, kwargs)
    print(f"iFirma emulator ready on http://{host}:{server.port}/iapi", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """``python -m emulators.ifirma --user demo@example.pl --faktura-key EAB0…``."""
    p = argparse.ArgumentParser(description="Fake iFirma iapi")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8085)
    p.add_argument("--user", default="demo@example.pl")
    p.add_argument("--faktura-key", default="EAB0D8ACF3308F3B")
    p.add_argument("--abonent-key", default="EAB0D8ACF3308F3B")
    p.add_argument("--public-base-url", default=None)
    p.add_argument("--ksef-delay-gets", type=int, default=1)
    p.add_argument("--wrap-get", action="store_true")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    keys = {"faktura": a.faktura_key, "abonent": a.abonent_key}
    serve(
        a.host,
        a.port,
        quiet=a.quiet,
        user=a.user,
        keys=keys,
        public_base_url=a.public_base_url,
        ksef_delay_gets=a.ksef_delay_gets,
        wrap_get=a.wrap_get,
    )


if __name__ == "__main__":
    main()
