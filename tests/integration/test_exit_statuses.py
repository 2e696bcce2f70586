"""Every expected failure's exit status, read from a real process, as a scheduler or a shell
script reads it: the status from `tasks/errors.py`, the exception's name in the last line, no
traceback. (0 is checked by most command-line tests, 3 by test_bad_inputs.py and
test_real_sources.py, 9 by test_state_faults.py, 10 by test_score_findings.py.)
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tasks.data.generate import generate_snapshot
from tasks.errors import (
    EXIT_CHAMPION_BELOW_FLOOR,
    EXIT_CONFLICT,
    EXIT_SOURCE_UNAVAILABLE,
    EXIT_TRACKING,
    EXIT_TRAINING,
    EXIT_USAGE,
)
from tests.registry_helpers import make_version
from tests.servers import clean_env, free_port, run_cli

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = ("--data", "generated", "--generated-rows", "1000", "--folds", "2")


@pytest.fixture
def busy_source() -> Iterator[str]:
    """A snapshot URL that answers 503 to everything."""

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{period}}.csv"
    finally:
        server.shutdown()


def _weak_champion() -> None:
    """Champion v1 fitted to noise (AUC about 0.5): below the default floor on any month."""
    train = generate_snapshot("2026-01", seed=1, rows=1000)
    make_version(train, target=np.random.default_rng(0).integers(0, 2, len(train)))


def _champion() -> None:
    make_version(generate_snapshot("2026-01", seed=1, rows=600))


#: status -> (what sets the scene, the command's arguments, extra environment, exception name)
CASES: dict[int, tuple[Callable[[], None] | None, tuple[str, ...], dict[str, str], str]] = {
    EXIT_USAGE: (None, ("run", "--folds", "1"), {}, "folds"),
    EXIT_TRAINING: (
        None,
        ("run", "--period", "2026-02", *FAST, "--models", "nosuch"),
        {},
        "TrainingFailed: PyCaret could not train",
    ),
    EXIT_TRACKING: (
        None,
        ("run", "--period", "2026-02", *FAST),
        {"CHURN_RETRAIN_TRACKING_URI": "http://127.0.0.1:{port}"},
        "ServerUnreachable:",
    ),
    EXIT_SOURCE_UNAVAILABLE: (
        None,
        ("run", "--period", "2026-02", "--data", "{busy}"),
        {"CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS": "4"},
        "SnapshotUnavailable:",
    ),
    EXIT_CHAMPION_BELOW_FLOOR: (
        _weak_champion,
        ("run", "--period", "2026-02", *FAST, "--models", "dummy"),
        {},
        "ChampionBelowFloor:",
    ),
    EXIT_CONFLICT: (_champion, ("rollback", "--expected-champion", "9"), {}, "Conflict:"),
}


@pytest.mark.parametrize("status", list(CASES))
def test_each_expected_failure_exits_with_its_status(
    status: int, state_home: Path, tmp_path: Path, busy_source: str
) -> None:
    scene, args, extra, words = CASES[status]
    if scene is not None:
        scene()
    fill = {"port": str(free_port()), "busy": busy_source}
    env = clean_env(
        CHURN_RETRAIN_HOME=str(state_home), **{k: v.format(**fill) for k, v in extra.items()}
    )
    done = run_cli(*(a.format(**fill) for a in args), env=env, cwd=tmp_path, timeout=240)
    assert done.returncode == status, done.stderr[-3000:]
    assert words in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
