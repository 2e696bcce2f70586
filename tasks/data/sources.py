"""Read a snapshot's bytes from a file or an http(s) URL, within a size limit and a deadline.

A URL download is bounded three ways: each connect and each socket read waits at most
`timeout` seconds, and the whole download (connect, headers, body) at most `deadline` seconds:
at the deadline a watchdog shuts the connection down, so a server that drips one byte a second
cannot keep a run alive. A 4xx answer (the file is not there, or not ours to read) is a
`SnapshotRejected`; a 5xx or 429 answer, no answer in time, or no connection is a
`SnapshotUnavailable`, which the load task retries. Messages name the location without
credentials (`redact_uri`) and never quote the server's answer.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from tasks.data.request import DEFAULT_DOWNLOAD_DEADLINE, DEFAULT_MAX_BYTES, is_url
from tasks.errors import SnapshotRejected, SnapshotUnavailable
from tasks.settings import redact_uri

#: Answers worth asking again: the server is busy or broken now, the file may be fine later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
_CHUNK = 1024 * 1024


def read_source_bytes(
    source: str,
    *,
    timeout: float = 30.0,
    deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """The raw bytes of a local file or an http(s) URL, refusing anything over `max_bytes`.

    `timeout` bounds each connect and read of a URL, `deadline` the whole download.
    """
    shown = redact_uri(source)
    if is_url(source):
        payload = _download(
            source, shown=shown, timeout=timeout, deadline=deadline, limit=max_bytes
        )
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise SnapshotRejected(f"Snapshot {shown}: file not found")
        if path.stat().st_size > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: file is {path.stat().st_size:,} bytes, over the "
                f"{max_bytes:,}-byte limit"
            )
        payload = path.read_bytes()
    if len(payload) > max_bytes:
        raise SnapshotRejected(f"Snapshot {shown}: over the {max_bytes:,}-byte limit")
    return payload


def _download(source: str, *, shown: str, timeout: float, deadline: float, limit: int) -> bytes:
    request = _request(source)
    watchdog = _Watchdog(deadline)
    opener = urllib.request.build_opener(
        _WatchedHTTPHandler(watchdog), _WatchedHTTPSHandler(watchdog)
    )
    started = time.monotonic()
    watchdog.start()
    try:
        with opener.open(request, timeout=min(timeout, deadline)) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SnapshotRejected(
                    f"Snapshot {shown}: the server announces {int(declared):,} bytes, over the "
                    f"{limit:,}-byte limit"
                )
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read1(_CHUNK):
                if watchdog.fired:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise SnapshotRejected(f"Snapshot {shown}: over the {limit:,}-byte limit")
        if watchdog.fired:
            raise _too_slow(shown, deadline)
        return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _answered(shown, exc.code, exc.reason) from None
    except (OSError, http.client.HTTPException) as exc:
        waited = time.monotonic() - started
        # The read timeout is capped at the deadline, so the two can fire together: past the
        # deadline, the deadline is what ended the download, whichever timer won the race.
        if watchdog.fired or waited >= deadline:
            raise _too_slow(shown, deadline) from None
        raise _unreachable(shown, exc, waited=waited) from None
    finally:
        watchdog.cancel()


def _request(source: str) -> urllib.request.Request:
    """A request for `source`, with `user:password@` moved into a basic-auth header.

    urllib would take `user:password@host` for the host name (and quote it in its error).
    """
    parts = urlsplit(source)
    if "@" not in parts.netloc:
        return urllib.request.Request(source)
    netloc = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)))
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _answered(shown: str, status: int, reason: object) -> SnapshotRejected | SnapshotUnavailable:
    phrase = _status_phrase(status)
    if status in _RETRYABLE_STATUSES or 500 <= status <= 599:
        return SnapshotUnavailable(
            f"Snapshot {shown}: the server answered HTTP {status}{phrase}; try again later"
        )
    hint = {
        401: "; the URL needs credentials (user:password@ or a signed link)",
        403: "; check the credentials or the link's signature (expired?)",
        404: "; is the month delivered yet, and is the {period} in the URL right?",
        410: "; is the month delivered yet, and is the {period} in the URL right?",
    }.get(status, "")
    return SnapshotRejected(f"Snapshot {shown}: the server answered HTTP {status}{phrase}{hint}")


def _status_phrase(status: int) -> str:
    try:
        return f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        return ""


def _too_slow(shown: str, deadline: float) -> SnapshotUnavailable:
    return SnapshotUnavailable(
        f"Snapshot {shown}: download not finished within {deadline:g} s (the deadline, "
        "CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS)"
    )


def _unreachable(shown: str, exc: BaseException, *, waited: float) -> SnapshotUnavailable:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        problem = f"no answer within {round(waited, 1):g} s (timed out)"
    elif isinstance(reason, ConnectionRefusedError):
        problem = "connection refused: nothing listens there (server down?)"
    elif isinstance(reason, socket.gaierror):
        problem = "host name not found"
    elif isinstance(reason, ConnectionError | http.client.HTTPException):
        problem = f"the connection broke ({type(reason).__name__})"
    else:
        problem = f"connection failed ({type(reason).__name__})"
    return SnapshotUnavailable(f"Snapshot {shown}: {problem}")


class _Watchdog:
    """Shuts down every connection of one download when its deadline passes."""

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(deadline, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def watch(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for connection in self._connections:
                sock = connection.sock
                if sock is None:
                    continue
                # The plain socket's shutdown, also under TLS: it wakes a blocked read.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self._watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)

    def _connection(self, host: str, **kwargs: Any) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(host, **kwargs)
        self._watchdog.watch(connection)
        return connection


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self._watchdog = watchdog

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._context)  # type: ignore[attr-defined]

    def _connection(self, host: str, **kwargs: Any) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(host, **kwargs)
        self._watchdog.watch(connection)
        return connection
