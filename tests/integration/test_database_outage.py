"""Issue 30's catalogue: the PostgreSQL server under the production profile (the Prefect
server's and the MLflow server's database) is stopped while a monthly run trains.

The run ends with a named failure (the MLflow server's 503 first, then the Prefect server's
500 when the flow tries to record it): its exit status, no traceback, nothing half-done. When
PostgreSQL is back, the next run marks what the dead one left (its MLflow run FAILED, its flow
run Crashed) and completes the month.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks.errors import EXIT_TRACKING
from tests.servers import clean_env, free_port, run_cli, start, stop, wait_for, wait_http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MONTH = ("--data", "generated", "--models", "lr", "--folds", "2", "--generated-rows", "1500")


@dataclass
class Profile:
    home: Path
    ports: dict[str, int]
    env: dict[str, str]

    def make(self, *args: str) -> None:
        variables = [f"{name}={port}" for name, port in self.ports.items()]
        done = subprocess.run(
            ["make", *args, *variables],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"make {args}:\n{done.stdout}\n{done.stderr}"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['MLFLOW_PORT']}"


@pytest.fixture(scope="module")
def profile() -> Iterator[Profile]:
    """PostgreSQL, and the Prefect and MLflow servers on it, through the Makefile's targets."""
    home = Path(tempfile.mkdtemp(prefix="churn-outage-"))
    home.chmod(0o755)  # as root, PostgreSQL runs as the user postgres, who must reach it
    ports = {name: free_port() for name in ("PG_PORT", "PREFECT_PORT", "MLFLOW_PORT")}
    env = clean_env(
        CHURN_RETRAIN_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{ports['PREFECT_PORT']}/api",
    )
    profile = Profile(home=home, ports=ports, env=env)
    variables = [f"{name}={port}" for name, port in ports.items()]
    servers: list[subprocess.Popen[bytes]] = []
    try:
        profile.make("postgres")
        health = {
            "prefect-server-pg": f"{env['PREFECT_API_URL']}/health",
            "mlflow-server-pg": f"{profile.tracking_uri}/health",
        }
        for target, url in health.items():
            log = home / f"{target}.log"
            servers.append(start(["make", target, *variables], env=env, log=log, cwd=ROOT))
            wait_http(url, timeout=180, process=servers[-1], log=log)
        profile.env = {**env, "CHURN_RETRAIN_TRACKING_URI": profile.tracking_uri}
        yield profile
    finally:
        for server in servers:
            stop(server)
        if (home / "postgres" / "password").exists():
            profile.make("postgres-stop")
        assert not (home / "postgres" / "data" / "postmaster.pid").exists()


def _registry(profile: Profile) -> tuple[str | None, list[str], list[str]]:
    """(champion, versions, verdicts recorded on finished runs), as the MLflow server says."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=profile.tracking_uri, registry_uri=profile.tracking_uri)
    model = client.get_registered_model("telco-churn")
    versions = sorted(v.version for v in client.search_model_versions("name = 'telco-churn'"))
    experiment = client.get_experiment_by_name("churn-retrain")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    verdicts = sorted(v for r in runs if (v := r.data.tags.get("decision.verdict")))
    return model.aliases.get("champion"), versions, verdicts


def _flow_runs(profile: Profile) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: profile.env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        return {run.name: str(run.state_type.value) for run in client.read_flow_runs()}


@pytest.mark.timeout(900)
def test_postgresql_stopped_while_training_fails_named_and_the_next_run_completes(
    profile: Profile,
) -> None:
    first = run_cli("run", "--period", "2026-01", *MONTH, env=profile.env, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _registry(profile)
    assert before[:2] == ("1", ["1"])

    # Prefect's INFO lines say when training starts (the suite's clean_env keeps WARNING).
    log = profile.home / "outage-run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "--period", "2026-02", *MONTH],
            cwd=ROOT,
            env={**profile.env, "PREFECT_LOGGING_LEVEL": "INFO"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            "the run training", lambda: "train-challenger" in log.read_text() or None, seconds=120
        )
        profile.make("postgres-stop")
        stopped = time.monotonic()
        status = run.wait(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    took = time.monotonic() - stopped
    output = log.read_text()
    print(f"\nPostgreSQL stopped while training: exit {status} {took:.1f} s later")
    print("\n".join(line for line in output.splitlines() if "churn-retrain:" in line))

    assert status == EXIT_TRACKING
    assert "OrchestratorUnavailable: the Prefect server" in output
    assert "it answered HTTP 500 to POST /flow_runs/" in output
    assert "The run had failed first: MLflow server" in output
    assert "it answers HTTP 503 (every retry too)" in output
    assert "Traceback" not in output

    profile.make("postgres")  # the outage is over
    assert _registry(profile) == before  # nothing half-done: no version, alias or verdict
    assert "RUNNING" in _flow_runs(profile).values()  # what the dead run left behind

    after = run_cli("run", "--period", "2026-02", *MONTH, env=profile.env, cwd=ROOT)
    assert after.returncode == 0, after.stderr[-3000:]
    assert "was left RUNNING: its process" in after.stderr  # the MLflow run, marked FAILED
    assert "was left Running: its CLI process" in after.stderr  # the flow run, Crashed
    states: dict[str, Any] = _flow_runs(profile)
    assert "RUNNING" not in states.values() and "CRASHED" in states.values()
    champion, versions, verdicts = _registry(profile)
    assert versions == ["1", "2"] and champion in versions
    assert len(verdicts) == 2  # one decision per completed month
