"""How long an unreachable tracking server keeps a run waiting: our bounds next to MLflow's defaults.

    uv run python benchmarks/bench_tracking.py [--with-mlflow-defaults] [--json OUT]

In one process, side by side:
- `check-tracking` (the first task of every run, default settings) against a closed port and
  against a black hole (a socket that accepts connections and never answers);
- one MLflow client call against a closed port with the bounded environment a run sets, and,
  with --with-mlflow-defaults (about four minutes), with MLflow's own defaults;
- `check-tracking` against a healthy local MLflow server with basic auth (cold, then warm).

Prints a table and writes the figures as JSON (default benchmarks/results/tracking.json).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _black_hole() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        sock.close()


def _timed(call: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        call()
        outcome = "ok"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
    return round(time.perf_counter() - started, 2), outcome


def _check(uri: str, **env: str) -> Callable[[], object]:
    from tasks.settings import Settings
    from tasks.tracking.check import check_tracking

    def call() -> object:
        return check_tracking.fn(Settings(_env_file=None, tracking_uri=uri, **env))  # type: ignore[call-arg]

    return call


def _client_call(uri: str, *, bounded: bool) -> Callable[[], object]:
    from mlflow.tracking import MlflowClient

    from tasks.settings import Settings
    from tasks.tracking.connection import connection_for

    def call() -> object:
        names = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")
        names += ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",)
        for name in names:
            os.environ.pop(name, None)
        if bounded:
            settings = Settings(_env_file=None, tracking_uri=uri)  # type: ignore[call-arg]
            os.environ.update(connection_for(settings).environment())
        return MlflowClient(tracking_uri=uri).search_experiments(max_results=1)

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-mlflow-defaults", action="store_true")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "tracking.json"
    )
    args = parser.parse_args()

    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "CHURN_RETRAIN_", "DAGSHUB_")):
            del os.environ[name]
    rows: list[tuple[str, float, str]] = []
    closed = f"http://127.0.0.1:{_closed_port()}"
    rows.append(("check-tracking, closed port", *_timed(_check(closed))))
    with _black_hole() as port:
        rows.append(("check-tracking, black hole", *_timed(_check(f"http://127.0.0.1:{port}"))))
    rows.append(
        ("client call, closed port, bounded env", *_timed(_client_call(closed, bounded=True)))
    )
    if args.with_mlflow_defaults:
        rows.append(
            (
                "client call, closed port, MLflow defaults",
                *_timed(_client_call(closed, bounded=False)),
            )
        )

    from tracking_server import ADMIN_PASSWORD, ADMIN_USER, TrackingServer

    with tempfile.TemporaryDirectory() as tmp:
        server = TrackingServer(Path(tmp) / "server")
        server.start()
        try:
            auth = {"tracking_username": ADMIN_USER, "tracking_password": ADMIN_PASSWORD}
            rows.append((f"server start until healthy ({server.url})", server.starts[-1], "ok"))
            rows.append(
                ("check-tracking, healthy server, cold", *_timed(_check(server.url, **auth)))
            )
            rows.append(
                ("check-tracking, healthy server, warm", *_timed(_check(server.url, **auth)))
            )
        finally:
            server.kill()

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  seconds  outcome")
    for case, seconds, outcome in rows:
        print(f"{case:<{width}}  {seconds:7.2f}  {outcome}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps([{"case": c, "seconds": s, "outcome": o} for c, s, o in rows], indent=2)
    )
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
