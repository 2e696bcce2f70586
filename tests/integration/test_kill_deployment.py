"""The kill matrix of a deployment run: its flow-run process killed at a stage, on a real server.

A flow run of the `retrain/manual` deployment (from `make deploy`) is executed the way a process
worker executes it, by `python -m prefect.engine` with PREFECT__FLOW_RUN_ID set, except that
tests/killing.py's launcher pauses one task first; the process is killed once the task is
reached. Each case checks: no process of the run is left, the flow run ends Crashed (SIGTERM: by
the engine itself; SIGKILL: by the unresponsive-run automation once its heartbeats stop) and the
failed-run automation alerts a receiver on 127.0.0.1 naming it; the champion and its history are
those of before; the next run (a CLI run against the same server) completes, marks an MLflow run
left RUNNING FAILED and says so; a version the killed run registered never becomes champion.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.alerts.automations import (
    AUTOMATION_FILE,
    UNRESPONSIVE_AUTOMATION_FILE,
    automation_definition,
    install_automation,
)
from tests.alert_receivers import AlertReceiver, receiver
from tests.killing import (
    STAGES,
    champion,
    history,
    launcher_args,
    mlflow_client,
    no_process_left,
    versions,
)
from tests.servers import clean_env, run_cli, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc"),
]

ROOT = Path(__file__).resolve().parents[2]
FAST = {"data": "generated", "models": ["lr"], "folds": 2, "generated_rows": 500}
#: A tie promotes under this rule, so the killed run reaches `promote-challenger`.
KILLED_PARAMS = {**FAST, "period": "2026-02", "rule": {"method": "point", "min_improvement": 0}}
CLI_ARGS = ["--data", "generated", "--generated-rows", "500", "--models", "lr", "--folds", "2"]

#: The cases `make test` runs; all 12: `make test-kill-matrix`.
DEFAULT_CASES = {("train", "SIGTERM"), ("register", "SIGKILL")}
CASES = [
    pytest.param(stage, sig, id=f"{stage}-{sig.name}")
    for stage in STAGES
    for sig in (signal.SIGKILL, signal.SIGTERM)
    if os.environ.get("CHURN_RETRAIN_KILL_MATRIX") == "all" or (stage, sig.name) in DEFAULT_CASES
]


def _heartbeat(client: Any, flow_run_id: object) -> bool | None:
    """True once the server holds a heartbeat event of the flow run, else None."""
    from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter

    page = client.read_events(
        filter=EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
        ),
        limit=1,
    )
    return True if page.events else None


def _env(home: Path, api_url: str) -> dict[str, str]:
    return clean_env(CHURN_RETRAIN_HOME=str(home), PREFECT_API_URL=api_url)


@pytest.fixture(scope="module")
def deployed(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The deployments of prefect.yaml on a real server, the two automations alerting a
        receiver (the unresponsive one waiting 40 s, not 10 minutes, for runs beating every 30 s, the
    shortest Prefect allows), and a state
        directory holding a champion (v1, one history event)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    api_url = str(PREFECT_API_URL.value())
    base = tmp_path_factory.mktemp("kill-deployment") / "base"
    env = _env(base, api_url)
    subprocess.run(["make", "deploy"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=300)  # fmt: skip
    unresponsive = automation_definition(UNRESPONSIVE_AUTOMATION_FILE)
    unresponsive = unresponsive.model_copy(
        update={
            "trigger": unresponsive.trigger.model_copy(update={"within": timedelta(seconds=40)})
        }
    )
    done = run_cli("run", "--period", "2026-01", *CLI_ARGS, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = []
    with receiver() as server, get_client(sync_client=True) as client:
        CustomWebhookNotificationBlock(
            name="churn-kill", url=server.url, json_data={"text": "{{subject}}\n{{body}}"}
        ).save("churn-kill-test", overwrite=True)
        try:
            ids.append(install_automation(AUTOMATION_FILE, block="custom-webhook/churn-kill-test"))
            ids.append(client.create_automation(unresponsive))
            deployment = client.read_deployment_by_name("retrain/manual")
            yield api_url, base, deployment.id, server
        finally:
            for automation_id in ids:
                client.delete_automation(automation_id)


@pytest.mark.parametrize(("stage", "sig"), CASES)
def test_a_deployment_run_killed_at_a_stage_ends_crashed_and_alerts(
    stage: str, sig: signal.Signals, deployed: Any, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client

    api_url, base, deployment_id, alerts = deployed
    alerts: AlertReceiver
    home = tmp_path / "state"
    shutil.copytree(base, home)  # same path inside: the artifact location is absolute
    champion_before, history_before, versions_before = champion(home), history(home), versions(home)
    alerts.bodies.clear()
    marker = tmp_path / "paused"
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"params": {**KILLED_PARAMS, "seed": 7}}
        )
        # What a process worker runs for a flow run, with the pausing launcher in front.
        killed = subprocess.Popen(
            [sys.executable, *launcher_args(stage, marker, "prefect.engine")],
            env={
                **_env(home, api_url),
                "PREFECT__FLOW_RUN_ID": str(flow_run.id),
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
            },
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "engine.log").open("wb"),
            start_new_session=True,
        )
        try:
            wait_for(
                f"{stage} reached",
                lambda: (
                    True if marker.exists() else ("exited" if killed.poll() is not None else None)
                ),
                seconds=240,
            )
            assert killed.poll() is None, (tmp_path / "engine.log").read_text()[-3000:]
            if sig == signal.SIGKILL:  # the server must have heard it once, to miss it after
                wait_for(
                    "its first heartbeat on the server",
                    lambda: _heartbeat(client, flow_run.id),
                    seconds=60,
                )
            # The engine process alone, as a worker's cancel or an OOM kill would: a child it
            # leaves behind is caught below, not killed with the group.
            os.kill(killed.pid, sig)
            killed.wait(timeout=60)
        finally:
            if killed.poll() is None:
                os.killpg(killed.pid, signal.SIGKILL)
                killed.wait()
        no_process_left(home)

        def _crashed() -> Any:
            state = client.read_flow_run(flow_run.id).state
            return state if state is not None and state.is_crashed() else None

        state = wait_for("the flow run Crashed", _crashed, seconds=120)
        wait_for(
            "the alert", lambda: [t for t in alerts.texts() if str(flow_run.id) in t] or None,
            seconds=60,
        )  # fmt: skip
    if sig == signal.SIGKILL:
        assert "No heartbeat" in (state.message or "")

    client = mlflow_client(home)
    experiment = client.get_experiment_by_name("churn-retrain")
    assert experiment is not None
    interrupted = [
        r for r in client.search_runs([experiment.experiment_id])
        if r.info.run_name == "retrain-2026-02"
    ]  # fmt: skip
    assert len(interrupted) == int(stage not in ("load", "validate"))
    if interrupted and sig == signal.SIGTERM:
        assert interrupted[0].info.status == "KILLED"  # the run marked its own MLflow run
    killed_versions = versions(home) - versions_before
    assert champion(home) == champion_before and history(home) == history_before
    assert bool(killed_versions) == (stage in ("register", "promote"))

    after = run_cli("run", "--period", "2026-03", *CLI_ARGS, env=_env(home, api_url))
    assert after.returncode == 0, after.stderr[-3000:]
    if interrupted and sig == signal.SIGKILL:
        run_id = interrupted[0].info.run_id
        assert f"MLflow run {run_id} (retrain-2026-02) was left RUNNING" in after.stderr
        assert client.get_run(run_id).info.status == "FAILED"
    assert champion(home) not in killed_versions
    after_history = history(home)
    assert {k: after_history[k] for k in history_before} == history_before
    print(f"{stage} {sig.name}: {state.name} ({(state.message or '')[:60]})")
