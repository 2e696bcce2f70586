"""Real alert receivers on 127.0.0.1 for tests: one that records, one that never answers."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class AlertReceiver:
    """An HTTP server on loopback that records every POST body (JSON decoded when it is JSON).

    `failures` answers that many requests with HTTP 503 first, to exercise retries.
    """

    def __init__(self, *, failures: int = 0, status: int = 200) -> None:
        self.bodies: list[Any] = []
        self.requests = 0
        self._failures = failures
        self._status = status
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                with receiver._lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver._failures
                    if not failing and receiver._status < 300:
                        try:
                            receiver.bodies.append(json.loads(raw))
                        except ValueError:
                            receiver.bodies.append(raw)
                self.send_response(503 if failing else receiver._status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/churn"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def texts(self) -> list[str]:
        """Every recorded alert as one string (JSON bodies serialised), for `in` checks."""
        return [b if isinstance(b, str) else json.dumps(b) for b in self.bodies]

    def clear(self) -> None:
        with self._lock:
            self.bodies.clear()
            self.requests = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiver(**kwargs: Any) -> Iterator[AlertReceiver]:
    server = AlertReceiver(**kwargs)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def silent_receiver() -> Iterator[str]:
    """A port that accepts connections (kernel backlog) and never answers: a hung receiver."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/churn"
    finally:
        sock.close()


def closed_port_url() -> str:
    """A loopback URL nobody listens on: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hooks/churn"
