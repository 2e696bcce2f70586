"""Two promotions racing on one comparison: never both, in every way of running.

Each race releases two real processes at the same instant into `promote_challenger`, both
compared against the same champion (v1), with versions v2 and v3:
- one state directory (SQLite), each process with its own Prefect server: the Prefect lock is
  not shared, as for two `churn-retrain run` processes on one machine;
- one remote MLflow server with basic auth, each process with its own Prefect server: two
  machines sharing a tracking server and nothing else;
- one state directory and one Prefect server, as deployment runs are.
Exactly one must promote; the other's verdict is `conflict`. And whole `churn-retrain run`
processes on one state directory, each with its own temporary Prefect server, paused right
before promoting and released together.

`make test` runs each race CHURN_RETRAIN_RACES times (default 1); `make test-races` 10 times.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tasks.registry.history import read_history
from tests.servers import clean_env, run_cli
from tests.tracking_server import ADMIN_PASSWORD, ADMIN_USER, TrackingServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REPEATS = int(os.environ.get("CHURN_RETRAIN_RACES", "1"))

#: A process that promotes `version` over `expected` when the go file appears.
_RACER = """
import json, sys, time
from pathlib import Path
import tasks.registry.promote as promote
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.promote import promote_challenger
name, version, expected, ready, go = sys.argv[1:6]
# Widen the window between reading the champion and moving it to a second, as a slow registry
# would: without a shared lock both racers read v1 and both move it (the control does).
move = promote.move_champion
def slow_move(*args, **kwargs):
    time.sleep(1.0)
    return move(*args, **kwargs)
promote.move_champion = slow_move
if sys.argv[6:] == ["unlocked"]:  # the control: no lock, no lease
    import contextlib
    import tasks.registry.move as move_module
    promote.promotion_lock = lambda *a, **k: contextlib.nullcontext()
    promote.check_lease = move_module.check_lease = lambda *a, **k: None
ensure_promotion_lock.fn(name, create=True)
Path(ready).touch()
deadline = time.monotonic() + 120
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.002)
outcome = promote_challenger.fn(name, version, expected_champion=expected,
                                decision_run=f"race-v{version}", reason="race")
print(json.dumps(outcome.model_dump(mode="json")))
"""


@pytest.fixture(scope="module")
def prefect_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two Prefect servers that know nothing of each other: their API URLs."""
    from tasks.runtime.prefect_server import PrefectServer

    servers = []
    try:
        for which in ("a", "b"):
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp(f"prefect-{which}")))
                server = PrefectServer()
                servers.append(server)
                server.start()
        for server in servers:
            server.wait()
        yield [server.api_url for server in servers]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    server = TrackingServer(tmp_path_factory.mktemp("race-mlflow"), default_permission="EDIT")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _registry(client: MlflowClient, name: str) -> None:
    """A model with champion v1 and two challengers, v2 and v3 (no training needed: the
    promotion reads and moves tags and aliases only)."""
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source=f"s3://never-read/{name}")
    client.set_registered_model_alias(name, "champion", "1")


def _race(
    name: str, env_of: list[dict[str, str]], tmp: Path, *, unlocked: bool = False
) -> list[dict[str, Any]]:
    """Release two racers together (`unlocked`: without the promotion lock and lease, the
    control); their outcomes, v2's first."""
    go = tmp / f"{name}.go"
    racers = []
    for version, env in zip(("2", "3"), env_of, strict=True):
        ready = tmp / f"{name}.ready.{version}"
        argv = [sys.executable, "-c", _RACER, name, version, "1", str(ready), str(go)]
        argv += ["unlocked"] if unlocked else []
        racers.append((ready, subprocess.Popen(argv, cwd=ROOT, env=env, text=True,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not all(ready.exists() for ready, _ in racers):
            assert time.monotonic() < deadline, "the racers never got ready"
            assert all(p.poll() is None for _, p in racers), [p.stderr.read() for _, p in racers]  # type: ignore[union-attr]
            time.sleep(0.05)
        go.touch()
        outcomes = []
        for _, process in racers:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, err[-3000:]
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
        return outcomes
    finally:
        for _, process in racers:
            if process.poll() is None:
                process.kill()


def _assert_one_promotion(client: MlflowClient, name: str, outcomes: list[dict[str, Any]]) -> None:
    promoted = [o for o in outcomes if o["promoted"]]
    refused = [o for o in outcomes if o["conflict"]]
    assert len(promoted) == 1 and len(refused) == 1, outcomes
    [winner], [loser] = promoted, refused
    assert "not promoted: the champion of" in loser["reason"], loser["reason"]
    champion = str(client.get_model_version_by_alias(name, "champion").version)
    assert champion == winner["champion_after"] == loser["champion_after"]
    moves = [event.to_version for event in read_history(client, name)]
    assert moves == [champion], moves  # one move, the winner's
    losing = "3" if champion == "2" else "2"
    assert client.get_model_version(name, losing).tags.get("verdict") == "conflict"
    assert not client.search_registered_models(f"name='{name}.promotion-lease'")  # released


def _env(**extra: str) -> dict[str, str]:
    return clean_env(PREFECT_LOGGING_LEVEL="WARNING", **extra)


@pytest.mark.parametrize("attempt", range(REPEATS))
def test_one_state_directory_without_a_shared_prefect_server(
    attempt: int, prefect_servers: list[str], tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = f"race-local-{attempt}"
    _registry(client, name)
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    outcomes = _race(name, [_env(PREFECT_API_URL=api, **env) for api in prefect_servers],
                     tmp_path)  # fmt: skip
    _assert_one_promotion(client, name, outcomes)


def test_the_control_without_the_lock_promotes_twice(
    prefect_servers: list[str], tmp_path: Path
) -> None:
    """The same race with the lock and lease taken out: both racers read v1 and both move it.
    The races above would show this if the lock failed: they can fail."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = "race-control"
    _registry(client, name)
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    outcomes = _race(
        name, [_env(PREFECT_API_URL=api, **env) for api in prefect_servers], tmp_path, unlocked=True
    )
    assert [o["promoted"] for o in outcomes] == [True, True], outcomes
    # Both moved from v1 (their history entries may even share a number: one overwrote the other).
    assert {e.from_version for e in read_history(client, name)} == {"1"}


@pytest.mark.parametrize("attempt", range(REPEATS))
def test_one_remote_mlflow_server_without_a_shared_prefect_server(
    attempt: int, prefect_servers: list[str], mlflow_server: TrackingServer, tmp_path: Path
) -> None:
    auth = {"MLFLOW_TRACKING_USERNAME": ADMIN_USER, "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, **auth}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
        name = f"race-remote-{attempt}"
        _registry(client, name)
        outcomes = _race(name, [_env(PREFECT_API_URL=api, **env) for api in prefect_servers],
                         tmp_path)  # fmt: skip
        _assert_one_promotion(client, name, outcomes)


@pytest.mark.parametrize("attempt", range(REPEATS))
def test_one_prefect_server_as_deployment_runs_share(
    attempt: int, prefect_servers: list[str], tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = f"race-shared-{attempt}"
    _registry(client, name)
    env = _env(PREFECT_API_URL=prefect_servers[0], MLFLOW_TRACKING_URI=uri, MLFLOW_REGISTRY_URI=uri)
    _assert_one_promotion(client, name, _race(name, [env, env], tmp_path))


# --- whole command-line runs -------------------------------------------------------------------

#: `churn-retrain` with `promote_challenger` held until the go file appears (marker when held).
_HELD_CLI = """
import runpy, sys, time
from pathlib import Path
import tasks.registry.promote as promote
ready, go = sys.argv[1:3]
real = promote.promote_challenger.fn
def held(*args, **kwargs):
    Path(ready).touch()
    deadline = time.monotonic() + 300
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    return real(*args, **kwargs)
promote.promote_challenger.fn = held
sys.argv = ["churn-retrain", *sys.argv[3:]]
runpy.run_module("cli.main", run_name="__main__")
"""
COMMON = ["--folds", "2", "--generated-rows", "1500", "--data", "generated"]
FAST = ["--models", "lr", *COMMON]


@pytest.fixture(scope="module")
def weak_champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory whose champion (v1) any trained model beats."""
    home = tmp_path_factory.mktemp("race-cli") / "state"
    first = run_cli("run", "--period", "2026-01", *COMMON, "--models", "dummy", "--rule.floor",
                    "0", env=clean_env(CHURN_RETRAIN_HOME=str(home)))  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    return home


@pytest.mark.parametrize("attempt", range(REPEATS))
def test_two_command_line_runs_on_one_state_directory(
    attempt: int, weak_champion: Path, tmp_path: Path
) -> None:
    home = tmp_path / "state"
    shutil.copytree(weak_champion, home)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    go, runs = tmp_path / "go", []
    for period in ("2026-02", "2026-03"):
        ready = tmp_path / f"ready-{period}"
        argv = [sys.executable, "-c", _HELD_CLI, str(ready), str(go),
                "run", "--period", period, *FAST, "--json"]  # fmt: skip
        env = clean_env(CHURN_RETRAIN_HOME=str(home))  # no PREFECT_API_URL: a server each
        runs.append((ready, subprocess.Popen(argv, cwd=ROOT, env=env, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)))  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not all(ready.exists() for ready, _ in runs):
            assert time.monotonic() < deadline, "the runs never reached the promotion"
            for _, p in runs:  # a run that ended before promoting: say why
                assert p.poll() is None, p.communicate()[0][-3000:] + p.communicate()[1][-3000:]
            time.sleep(0.1)
        go.touch()
        records = []
        for _, process in runs:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-3000:]
            records.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for _, process in runs:
            if process.poll() is None:
                process.kill()
    verdicts = sorted(r["verdict"] for r in records)
    # The dummy champion is below the default floor: the winner replaces it.
    assert verdicts == ["conflict", "replace-below-floor"], verdicts
    [winner] = [r for r in records if r["promoted"]]
    [loser] = [r for r in records if not r["promoted"]]
    assert loser["decision"]["superseded"] == "replace-below-floor"
    champion = str(client.get_model_version_by_alias("telco-churn", "champion").version)
    assert champion == winner["challenger"]["version"] == loser["champion_version_after"]
    moves = [event.to_version for event in read_history(client, "telco-churn")]
    assert moves == ["1", champion], moves
