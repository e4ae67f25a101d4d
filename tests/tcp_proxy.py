"""A TCP proxy for fault tests: it forwards to a real server until told to fail.

Modes:
- ``forward``: relay bytes both ways (the normal case);
- ``reset``: drop every open connection with a TCP reset and reset new ones at once, as a
  restarting or crashed server does;
- ``blackhole``: keep connections open but relay nothing, and accept new ones without ever
  answering, as a hung server or a stalled network path does from the client's side.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

MODES = ("forward", "reset", "blackhole")


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0), as a dead peer's kernel would answer."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class TcpProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        with self._lock:
            self.mode = mode
            if mode == "reset":
                for client, server in self._pairs:
                    _reset(client)
                    if server is not None:
                        _reset(server)
                self._pairs.clear()

    @contextmanager
    def failing(self, mode: str, seconds: float) -> Iterator[None]:
        """Fail in `mode` for `seconds`, then forward again."""
        self.set_mode(mode)
        try:
            time.sleep(seconds)
            yield
        finally:
            self.set_mode("forward")

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.set_mode("reset")

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
                if mode == "reset":
                    _reset(client)
                    continue
                if mode == "blackhole":
                    self._pairs.append((client, None))  # held open, never answered
                    continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, server))
            thread = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            thread.start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while not self._closed.is_set():
                for key, _ in selector.select(timeout=0.2):
                    if self.mode == "blackhole":
                        continue  # nothing passes; the bytes wait in the kernel buffers
                    source, target = key.fileobj, key.data
                    data = source.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    target.sendall(data)
                if self.mode == "blackhole":
                    time.sleep(0.05)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (client, server):
                with suppress(OSError):
                    sock.close()


@contextmanager
def tcp_proxy(upstream: tuple[str, int]) -> Iterator[TcpProxy]:
    proxy = TcpProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
