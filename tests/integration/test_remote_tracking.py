"""Retrains through a real MLflow server with basic auth (standing in for DagsHub), and its faults.

One server per module (ready in ~10 s), restarted on the same store after each deliberate kill.
Every test uses its own model and experiment, so the tests share the server but no state.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest

import tasks.training.train
from cli.main import main
from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.errors import TrackingUnavailable
from tasks.training.train import train_challenger
from tests.tracking_server import TrackingServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": 1500}
WEAK = {**FAST, "models": ["dummy"], "rule": {"floor": 0.0}}  # AUC 0.5: any real model beats it
BOT, BOT_PASSWORD = "churn-bot", "churn-bot-password-1"
#: The promise: an unreachable server fails the run within this many seconds.
START_BOUND_SECONDS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    srv = TrackingServer(tmp_path_factory.mktemp("mlflow-server"))
    srv.start()
    srv.create_user(BOT, BOT_PASSWORD)
    yield srv
    srv.kill()


@dataclass
class Remote:
    model: str
    server: TrackingServer
    home: Path


@pytest.fixture
def remote(
    state_home: Path,
    server: TrackingServer,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Remote:
    """Settings pointing at the server as a non-admin user, with a model of this test's own."""
    if server.process is None or server.process.poll() is not None:
        server.start()  # a previous test failed between its kill and its restart
    model = "churn-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", BOT)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", BOT_PASSWORD)
    monkeypatch.setenv("CHURN_RETRAIN_MODEL_NAME", model)
    monkeypatch.setenv("CHURN_RETRAIN_EXPERIMENT_NAME", model)
    return Remote(model=model, server=server, home=state_home)


def _runs(server: TrackingServer, experiment: str) -> list[dict[str, Any]]:
    found = server.api("GET", "experiments/get-by-name", params={"experiment_name": experiment})
    found.raise_for_status()
    experiment_id = found.json()["experiment"]["experiment_id"]
    response = server.api("POST", "runs/search", json={"experiment_ids": [experiment_id]})
    response.raise_for_status()
    return list(response.json().get("runs", []))


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_a_full_retrain_goes_through_the_server(remote: Remote) -> None:
    server, model = remote.server, remote.model
    record = retrain(RetrainParameters(period="2026-01", **FAST))

    assert record.verdict == "promote-first" and record.champion_version_after == "1"
    assert record.tracking_uri == server.url
    # What the server itself says, asked as its admin over its REST API.
    assert server.champion(model) == "1"
    versions = server.versions(model)
    assert [v["version"] for v in versions] == ["1"]
    assert {t["key"]: t["value"] for t in versions[0]["tags"]}["verdict"] == "promote-first"
    run = server.run(record.mlflow_run_id)
    assert run["info"]["status"] == "FINISHED"
    assert _tags(run)["decision.verdict"] == "promote-first"
    # Artifacts went through the server into its artifact store, not into the local state.
    stored = {p.name for p in (server.root / "artifacts").rglob("*") if p.is_file()}
    assert {"decision.json", "leaderboard.csv", "MLmodel"} <= stored
    assert not (remote.home / "mlflow.db").exists() and not (remote.home / "mlartifacts").exists()
    # The champion loads and scores through the server.
    champion = mlflow.pyfunc.load_model(f"models:/{model}@champion")
    scored = champion.predict(generate_snapshot("2026-02", seed=1, rows=20).drop(columns=["Churn"]))
    assert scored["churn_probability"].between(0, 1).all()


def test_wrong_credentials_exit_5_naming_the_server(
    remote: Remote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    started = time.perf_counter()
    code = main(
        [
            "run",
            "--period",
            "2026-01",
            "--data",
            "generated",
            "--generated-rows",
            "1500",
            "--models",
            "lr",
            "--folds",
            "3",
        ]
    )
    took = time.perf_counter() - started

    assert code == 5
    err = capsys.readouterr().err
    assert f"MLflow server {remote.server.url} refused the credentials" in err
    assert f"user '{BOT}'" in err and "HTTP 401" in err
    assert "not-the-password" not in err
    assert took < START_BOUND_SECONDS
    # Refused before anything was created there.
    missing = remote.server.api(
        "GET", "experiments/get-by-name", params={"experiment_name": remote.model}
    )
    assert missing.status_code == 404


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server or a firewall)."""
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
    yield int(sock.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    sock.close()


@pytest.mark.parametrize("kind", ["closed-port", "black-hole"])
def test_server_down_at_start_fails_within_the_bound(
    state_home: Path,
    black_hole: int,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    port = free_port() if kind == "closed-port" else black_hole
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    expected = "connection refused" if kind == "closed-port" else r"no answer within 10 s"
    started = time.perf_counter()
    with pytest.raises(
        TrackingUnavailable,
        match=rf"MLflow server http://127\.0\.0\.1:{port} is unreachable: {expected}",
    ):
        retrain(RetrainParameters(period="2026-01", **FAST))
    took = time.perf_counter() - started
    print(f"\n{kind}: the run failed after {took:.1f} s")
    assert took < START_BOUND_SECONDS
    assert not (state_home / "mlflow.db").exists()  # no fallback to the local store


def _assert_nothing_promoted(server: TrackingServer, model: str, champion: str) -> None:
    """The champion is where it was; no other version exists or carries a promoting verdict."""
    assert server.champion(model) == champion
    assert [v["version"] for v in server.versions(model)] == [champion]
    for run in _runs(server, model):
        if run["info"]["status"] != "FINISHED":
            assert not any(key.startswith("decision.") for key in _tags(run))


def _rerun_promotes(server: TrackingServer, model: str, champion: str) -> None:
    record = retrain(RetrainParameters(period="2026-02", **FAST))
    # The WEAK champion is below the default floor: a fit challenger replaces it.
    assert record.verdict == "replace-below-floor" and record.champion is not None
    assert record.champion.version == champion
    assert server.champion(model) == record.champion_version_after != champion
    assert server.champion(model, "previous-champion") == champion


def test_server_killed_during_training_keeps_the_champion(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, model = remote.server, remote.model
    assert retrain(RetrainParameters(period="2026-01", **WEAK)).champion_version_after == "1"

    def kill_server(*_: object) -> None:
        server.kill()  # the task is Running: PyCaret trains while the server is gone

    killing = train_challenger.with_options(on_running=[kill_server])
    monkeypatch.setattr(tasks.training.train, "train_challenger", killing)
    started = time.perf_counter()
    state = retrain(RetrainParameters(period="2026-02", **FAST), return_state=True)
    took = time.perf_counter() - started
    print(f"\nkilled during training: the run failed {took:.1f} s after it started")

    assert state.is_failed()
    assert "went away during the run: connection refused" in (state.message or "")
    with pytest.raises(TrackingUnavailable, match=rf"MLflow server {re.escape(server.url)} went"):
        state.result()
    server.start()  # same port, same store: the outage is over
    _assert_nothing_promoted(server, model, champion="1")

    monkeypatch.setattr(tasks.training.train, "train_challenger", train_challenger)
    _rerun_promotes(server, model, champion="1")


def test_server_killed_while_logging_keeps_the_champion(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, model = remote.server, remote.model
    assert retrain(RetrainParameters(period="2026-01", **WEAK)).champion_version_after == "1"

    real_log_model = mlflow.pyfunc.log_model

    def log_model_after_a_crash(*args: Any, **kwargs: Any) -> Any:
        # Params, CV metrics and the leaderboard are logged by now; the model upload is next.
        server.kill()
        return real_log_model(*args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc, "log_model", log_model_after_a_crash)
    started = time.perf_counter()
    state = retrain(RetrainParameters(period="2026-02", **FAST), return_state=True)
    took = time.perf_counter() - started
    print(f"\nkilled while logging: the run failed {took:.1f} s after it started")

    assert state.is_failed()
    assert "went away during the run" in (state.message or "")
    monkeypatch.setattr(mlflow.pyfunc, "log_model", real_log_model)
    server.start()
    _assert_nothing_promoted(server, model, champion="1")
    # The interrupted run logged the challenger's parameters before the crash (its CV metrics
    # come after the model, tied to it), so it really was mid-logging.
    interrupted = [r for r in _runs(server, model) if r["info"]["status"] != "FINISHED"]
    assert len(interrupted) == 1
    assert "challenger.algorithm" in {p["key"] for p in interrupted[0]["data"].get("params", [])}

    _rerun_promotes(server, model, champion="1")


def test_server_restarted_during_training_the_run_rides_through(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 30's catalogue: the server is restarted (killed, started again on the same store)
    while the challenger trains. With the retries sized to a restart (6: up to ~60 s of
    backoff), the run's next requests wait for it and the month completes, promoted once."""
    server, model = remote.server, remote.model
    assert retrain(RetrainParameters(period="2026-01", **WEAK)).champion_version_after == "1"
    monkeypatch.setenv("CHURN_RETRAIN_REQUEST_MAX_RETRIES", "6")
    outage: dict[str, float] = {}

    def restart_server(*_: object) -> None:
        server.kill()
        outage["down"] = time.perf_counter()

        def start_again() -> None:
            server.start()
            outage["up"] = time.perf_counter()

        threading.Thread(target=start_again, daemon=True).start()

    restarting = train_challenger.with_options(on_running=[restart_server])
    monkeypatch.setattr(tasks.training.train, "train_challenger", restarting)
    record = retrain(RetrainParameters(period="2026-02", **FAST))
    ended = time.perf_counter()
    print(f"\nrestarted during training: down {outage['up'] - outage['down']:.1f} s")

    assert outage["down"] < outage["up"] < ended  # the run really outlived an outage
    assert record.verdict == "replace-below-floor"
    assert server.champion(model) == record.champion_version_after == "2"
    assert server.champion(model, "previous-champion") == "1"
    run = server.run(record.mlflow_run_id)
    assert run["info"]["status"] == "FINISHED"
    assert _tags(run)["decision.verdict"] == "replace-below-floor"
