"""Issue 32: a backfill over 12 generated months, through the CLI and through the `retrain/backfill`
deployment on a real Prefect server and process worker; each stopped half-way (SIGTERM to the
CLI, a cancel from the UI's API for the deployment) and resumed with the decided months skipped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.data.generate import generate_snapshot
from tasks.errors import EXIT_REJECTED
from tests.integration.test_deployments import _with_api, alerts, prefect_stack  # noqa: F401
from tests.killing import mlflow_client, no_process_left
from tests.servers import clean_env, run_cli, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--models", "lr", "--folds", "2", "--generated-rows", "1500")
YEAR = [f"2026-{m:02d}" for m in range(1, 13)]


def _decided(home: Path) -> list[tuple[str, str]]:
    """(month, verdict) of every finished decision, in the order the runs started."""
    client = mlflow_client(home)
    experiment = client.get_experiment_by_name("churn-retrain")
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
    return [
        (r.data.tags["data.period"], r.data.tags["decision.verdict"])
        for r in runs
        if "decision.verdict" in r.data.tags
    ]


def _table(home: Path, start: str, end: str) -> list[dict[str, Any]]:
    path = home / "reports" / "backfills" / f"telco-churn-{start}-to-{end}.json"
    return list(json.loads(path.read_text()))


@pytest.mark.timeout(900)
def test_a_cli_backfill_killed_at_month_6_resumes_with_months_1_to_5_skipped(
    tmp_path: Path,
) -> None:
    home = tmp_path / "state"
    env = clean_env(CHURN_RETRAIN_HOME=str(home), PREFECT_LOGGING_LEVEL="INFO")
    args = ["backfill", "--from", "2026-01", "--to", "2026-12", "--data", "generated", *FAST]
    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("month 5 decided", lambda: "5/12 months" in log.read_text() or None, seconds=600)
        first.send_signal(signal.SIGTERM)  # month 6 is under way
        status = first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert status == 128 + signal.SIGTERM, log.read_text()[-3000:]
    no_process_left(home)
    assert [period for period, _ in _decided(home)] == YEAR[:5]

    second = run_cli(*args, env=env, cwd=ROOT, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "5 of 12 months decided before: skipped" in second.stderr + second.stdout
    assert "backfill 2026-01..2026-12: 7 decided, 5 skipped" in second.stdout
    assert "Traceback" not in second.stderr

    decided = _decided(home)
    assert [period for period, _ in decided] == YEAR  # 12 decisions, in order, each once
    assert decided[0][1] == "promote-first"
    table = _table(home, "2026-01", "2026-12")
    assert [row["period"] for row in table] == YEAR
    assert [row["status"] for row in table] == ["skipped"] * 5 + ["decided"] * 7
    assert all(row["champion"] and row["score"] for row in table)
    champions = {row["champion"] for row in table}
    plots = sorted((home / "reports" / "backfills").glob("reign-telco-churn-v*.png"))
    assert {p.stem.rsplit("-v", 1)[1] for p in plots} == champions


@pytest.mark.timeout(600)
def test_a_rejected_month_stops_the_backfill_unless_told_to_go_on(tmp_path: Path) -> None:
    home, data = tmp_path / "state", tmp_path / "data"
    data.mkdir()
    for period in YEAR[:3]:
        frame = generate_snapshot(period, rows=1500)
        if period == "2026-02":
            frame = frame.drop(columns=["tenure"])
        frame.to_csv(data / f"{period}.csv", index=False)
    env = clean_env(CHURN_RETRAIN_HOME=str(home))
    args = ["backfill", "--from", "2026-01", "--to", "2026-03", "--data", f"{data}/{{period}}.csv"]

    stopped = run_cli(*args, *FAST, env=env, cwd=ROOT)
    assert stopped.returncode == EXIT_REJECTED, stopped.stderr[-3000:]
    assert "backfill stopped at 2026-02 (rejected; 1 later months not run: 2026-03..2026-03)" in (
        stopped.stderr
    )
    assert "tenure" in stopped.stderr and "Traceback" not in stopped.stderr
    assert [period for period, _ in _decided(home)] == ["2026-01"]

    went_on = run_cli(*args, *FAST, "--continue-on-rejection", env=env, cwd=ROOT)
    assert went_on.returncode == 0, went_on.stderr[-3000:]
    assert "1 decided, 1 skipped, 1 rejected" in went_on.stdout
    assert "rejected     2026-02 (not trained; champion untouched)" in went_on.stdout
    assert [period for period, _ in _decided(home)] == ["2026-01", "2026-03"]


def _flow_run(env: dict[str, str], flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with _with_api(env), get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def _start_backfill(env: dict[str, str], *, timeout: float) -> Any:
    from prefect.deployments import run_deployment

    params = {"from": "2026-01", "to": "2026-12", "models": ["lr"], "folds": 2}
    with _with_api(env):
        return run_deployment(
            "retrain/backfill",
            parameters={"params": {**params, "data": "generated", "generated_rows": 1500}},
            timeout=timeout,
        )


@pytest.mark.timeout(1500)
def test_the_backfill_deployment_cancelled_at_month_6_resumes_on_the_worker(
    prefect_stack: dict[str, str],  # noqa: F811
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.states import Cancelling

    env, home = prefect_stack, Path(prefect_stack["CHURN_RETRAIN_HOME"])
    first = _start_backfill(env, timeout=0)  # as "Run" in the UI: returns once scheduled
    wait_for("month 5 decided", lambda: len(_decided(home)) >= 5 or None, seconds=900)
    with _with_api(env), get_client(sync_client=True) as client:
        client.set_flow_run_state(first.id, Cancelling())  # the UI's "Cancel"
    cancelled = wait_for(
        "the backfill cancelled",
        lambda: ((run := _flow_run(env, first.id)).state.is_final() and run) or None,
        seconds=120,
    )
    assert cancelled.state.is_cancelled(), cancelled.state
    done_before = [period for period, _ in _decided(home)]
    assert done_before in (YEAR[:5], YEAR[:6])  # month 6 may have finished before the cancel

    second = _start_backfill(env, timeout=900)
    assert second.state.is_completed(), second.state
    assert [period for period, _ in _decided(home)] == YEAR
    with _with_api(env), get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[second.id])
            )
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill"]))
        )
    # One sub-run per month not decided before: the Prefect UI shows each.
    assert len(children) == 12 - len(done_before)
    assert all(child.state.is_completed() for child in children)
    table = _table(home, "2026-01", "2026-12")
    assert [row["status"] for row in table][: len(done_before)] == ["skipped"] * len(done_before)
    assert any("| 2026-12 | decided |" in str(a.data) for a in artifacts)
