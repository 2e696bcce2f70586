"""URL sources against real HTTP servers on 127.0.0.1: every wait is bounded, every failure named."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tasks.data.fetch import fetch_bytes
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest
from tasks.errors import (
    EXIT_REJECTED,
    EXIT_SOURCE_UNAVAILABLE,
    SnapshotRejected,
    SnapshotUnavailable,
)
from tasks.runtime.deadline import Deadline
from tasks.settings import redact_uri


def read_source_bytes(
    url: str, *, timeout: float = 30.0, deadline: float = 5.0, max_bytes: int = 10**6
) -> bytes:
    """`fetch_bytes` with a deadline of `deadline` seconds from now."""
    return fetch_bytes(
        url,
        shown=redact_uri(url),
        deadline=Deadline.after(deadline),
        timeout=timeout,
        max_bytes=max_bytes,
    )


BODY = (
    b"customerID,SeniorCitizen,tenure,MonthlyCharges,TotalCharges,Contract,Churn\n"
    b"0001-AAAAA,0,5,20,100,Two year,No\n"
)
Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server:
    """A loopback HTTP server answering every GET with `handler`; counts the requests."""

    def __init__(self, handler: Handler) -> None:
        hits = self

        class Quiet(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.requests += 1
                hits.headers.append(dict(self.headers))
                handler(self)

            def log_message(self, *args: object) -> None:
                pass

        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.stopped = threading.Event()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def close(self) -> None:
        self.stopped.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], _Server]]:
    servers: list[_Server] = []

    def start(handler: Handler) -> _Server:
        servers.append(_Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _status(code: int) -> Handler:
    def answer(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_error(code, explain="SECRET-BODY 0001-AAAAA")

    return answer


def _ok(request: http.server.BaseHTTPRequestHandler) -> None:
    request.send_response(200)
    request.send_header("Content-Length", str(len(BODY)))
    request.end_headers()
    request.wfile.write(BODY)


def _drip(stopped: threading.Event) -> Handler:
    """Headers at once, then one byte a second of a body that never ends in time."""

    def answer(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(len(BODY)))
        request.end_headers()
        for byte in BODY:
            if stopped.wait(1):
                return
            try:
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
            except OSError:
                return

    return answer


@pytest.fixture
def silent() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_404_is_a_rejection_naming_the_redacted_url(serve: Callable[[Handler], _Server]) -> None:
    server = serve(_status(404))
    url = server.url.replace("http://", "http://alice:pw@") + "/d/2026-03.csv?sig=TOKEN"
    with pytest.raises(SnapshotRejected) as caught:
        read_source_bytes(url, deadline=5)
    message = str(caught.value)
    assert message.startswith(f"Snapshot {server.url}/d/2026-03.csv: the server answered HTTP 404")
    assert "alice" not in message and "pw" not in message and "TOKEN" not in message
    assert "SECRET" not in message and caught.value.exit_code == EXIT_REJECTED
    # The credentials went as a basic-auth header, not as part of the host name.
    assert server.headers[0]["Authorization"] == "Basic YWxpY2U6cHc="


@pytest.mark.parametrize("code", [500, 503, 429])
def test_a_5xx_is_unavailable(serve: Callable[[Handler], _Server], code: int) -> None:
    server = serve(_status(code))
    with pytest.raises(
        SnapshotUnavailable, match=rf"2026-03\.csv: the server answered HTTP {code}"
    ):
        read_source_bytes(server.url + "/2026-03.csv", deadline=5)
    assert SnapshotUnavailable("x").exit_code == EXIT_SOURCE_UNAVAILABLE == 6


def test_a_server_that_never_answers_times_out(silent: str) -> None:
    started = time.monotonic()
    with pytest.raises(SnapshotUnavailable, match=r"m\.csv: no answer within 0\.5 s \(timed out\)"):
        read_source_bytes(silent + "/m.csv", timeout=0.5, deadline=30)
    assert time.monotonic() - started < 4


def test_a_read_timeout_at_the_deadline_reports_the_deadline(silent: str) -> None:
    """The read timeout is capped at the deadline: when both fire together, the deadline is named.

    On a quiet machine the deadline's timer wins anyway; under load (CI) the read timeout can
    win, and then only `_download`'s elapsed-time check names the deadline."""
    for _ in range(3):  # each round is another race
        with pytest.raises(SnapshotUnavailable, match=r"m\.csv: download not finished within 1 s"):
            read_source_bytes(silent + "/m.csv", timeout=30, deadline=1)


def test_a_dripping_server_is_cut_off_at_the_deadline(serve: Callable[[Handler], _Server]) -> None:
    """Each byte comes within the read timeout, so only a whole-download deadline ends it."""
    stopped = threading.Event()
    server = serve(_drip(stopped))
    started = time.monotonic()
    try:
        with pytest.raises(SnapshotUnavailable, match=r"not finished within 2 s"):
            read_source_bytes(server.url + "/m.csv", timeout=30, deadline=2)
        assert time.monotonic() - started < 4
    finally:
        stopped.set()


def test_a_good_answer_is_read_whole_and_an_oversized_one_refused(
    serve: Callable[[Handler], _Server],
) -> None:
    server = serve(_ok)
    assert read_source_bytes(server.url + "/m.csv", deadline=5) == BODY
    with pytest.raises(SnapshotRejected, match="over the 10-byte limit"):
        read_source_bytes(server.url + "/m.csv", deadline=5, max_bytes=10)


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize(
    ("code", "attempts", "error"), [(404, 1, SnapshotRejected), (500, 3, SnapshotUnavailable)]
)
def test_the_load_task_retries_a_5xx_but_not_a_4xx(
    serve: Callable[[Handler], _Server], code: int, attempts: int, error: type[Exception]
) -> None:
    server = serve(_status(code))
    task = load_snapshot.with_options(retry_delay_seconds=0)
    with pytest.raises(error):
        task(SnapshotRequest(server.url + "/{period}.csv", "2026-03"), deadline_seconds=5)
    assert server.requests == attempts


@pytest.mark.usefixtures("prefect_server")
def test_the_deadline_comes_from_the_setting(
    serve: Callable[[Handler], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS", "1")
    stopped = threading.Event()
    server = serve(_drip(stopped))
    task = load_snapshot.with_options(retries=0)
    started = time.monotonic()
    try:
        with pytest.raises(SnapshotUnavailable, match="not finished within 1 s"):
            task(SnapshotRequest(server.url + "/{period}.csv", "2026-03"))
        assert time.monotonic() - started < 5
    finally:
        stopped.set()


def _slow_drip(stopped: threading.Event, every: float) -> Handler:
    """Headers at once, then one byte every `every` seconds, for minutes."""

    def answer(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", "100000")
        request.end_headers()
        while not stopped.wait(every):
            try:
                request.wfile.write(b"x")
                request.wfile.flush()
            except OSError:
                return

    return answer


@pytest.mark.usefixtures("prefect_server")
def test_the_deadline_bounds_the_whole_load_retries_included(
    serve: Callable[[Handler], _Server],
    monkeypatch: pytest.MonkeyPatch,
    state_home: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A byte every 2 s against a 15 s deadline: the run ends, exit 6, within 30 s (it took
    three deadlines plus the retry delays when each attempt had a deadline of its own)."""
    from cli.main import main

    monkeypatch.setenv("CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS", "15")
    stopped = threading.Event()
    server = serve(_slow_drip(stopped, 2.0))
    started = time.monotonic()
    try:
        code = main(["run", "--data", server.url + "/{period}.csv", "--period", "2026-03"])
        took = time.monotonic() - started
    finally:
        stopped.set()
    assert code == EXIT_SOURCE_UNAVAILABLE
    assert 15 <= took < 30, took
    assert server.requests == 1  # no time was left for another attempt
    err = capsys.readouterr().err
    assert "download not finished within 15 s (the deadline" in err
