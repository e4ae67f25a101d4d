"""The development server behind `kwit serve`: werkzeug's threaded server, stopped by a signal."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from werkzeug.serving import make_server


def serve_until_stopped(
    app: Any, host: str, port: int, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve `app` on host:port until SIGINT (Ctrl-C) or SIGTERM, then close the socket.

    Not `app.run()`: inside Flask's CLI machinery that call is a deliberate no-op.
    """
    server = make_server(host, port, app, threaded=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{server.server_port}")
        server.serve_forever()  # returns on KeyboardInterrupt
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (systemd, docker stop) ends the server the way Ctrl-C does.
    raise KeyboardInterrupt
