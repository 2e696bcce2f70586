"""The server-side automations: both files are valid Prefect automations, and on a real
(temporary) Prefect server a failed retrain notifies a receiver on 127.0.0.1, and so does one
whose process dies without a word, once its heartbeats stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.alerts.automations import (
    AUTOMATION_FILE,
    PLACEHOLDER_BLOCK_ID,
    UNRESPONSIVE_AUTOMATION_FILE,
    automation_definition,
    install_automation,
)
from tests.alert_receivers import AlertReceiver, receiver
from tests.servers import clean_env, wait_for


def test_the_file_parses_into_prefects_automation_model() -> None:
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    automation = automation_definition(AUTOMATION_FILE)
    assert isinstance(automation, AutomationCore) and automation.enabled
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger) and trigger.posture == Posture.Reactive
    assert trigger.expect == {
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.TimedOut",
    }
    assert trigger.match_related.model_dump() == {  # type: ignore[union-attr]
        "prefect.resource.role": "flow",
        "prefect.resource.name": "retrain",
    }
    [action] = automation.actions
    assert isinstance(action, SendNotification)
    assert action.block_document_id == PLACEHOLDER_BLOCK_ID
    chosen = uuid4()
    [filled] = automation_definition(AUTOMATION_FILE, block_document_id=chosen).actions
    assert isinstance(filled, SendNotification) and filled.block_document_id == chosen
    # Nothing that can carry credentials or data values goes into the notification.
    assert "parameters }}" not in action.body and "state.message" not in action.body


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_failed_retrain_run_notifies_through_the_automation(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client

    # Only the automation may alert here: the flow's own hook has no destination.
    for name in ("CHURN_RETRAIN_ALERT_URL", "CHURN_RETRAIN_ALERT_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    bad = tmp_path / "2026-03.csv"
    bad.write_text("customerID;gender;tenure\n0001;Male;3\n")
    server: AlertReceiver
    with receiver() as server:
        CustomWebhookNotificationBlock(
            name="churn-automation", url=server.url, json_data={"text": "{{subject}}\n{{body}}"}
        ).save("churn-automation-test", overwrite=True)
        automation_id = install_automation(
            AUTOMATION_FILE, block="custom-webhook/churn-automation-test"
        )
        try:
            # Installing twice replaces, never duplicates.
            automation_id = install_automation(
                AUTOMATION_FILE, block="custom-webhook/churn-automation-test"
            )
            with get_client(sync_client=True) as client:
                assert len(client.read_automations_by_name("churn-retrain-failed")) == 1
            state = retrain(
                RetrainParameters(period="2026-03", data=str(bad), models=["lr"], folds=3),
                return_state=True,
            )
            assert state.is_failed()
            run_name = state.state_details.flow_run_id
            deadline = time.monotonic() + 60
            while not server.bodies and time.monotonic() < deadline:
                time.sleep(0.25)
        finally:
            with get_client(sync_client=True) as client:
                client.delete_automation(automation_id)
    assert server.bodies, "the automation sent nothing within 60 s"
    text = server.texts()[0]
    assert "churn-retrain: flow run" in text and "Failed" in text
    assert str(run_name) in text


def test_the_unresponsive_run_file_marks_silent_runs_crashed() -> None:
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.settings.models.flows import FlowsSettings

    automation = automation_definition(UNRESPONSIVE_AUTOMATION_FILE)
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger) and trigger.posture == Posture.Proactive
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    ended = {f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed")}
    assert trigger.expect >= {"prefect.flow-run.heartbeat", *ended}
    assert trigger.match_related.model_dump() == {  # type: ignore[union-attr]
        "prefect.resource.role": "flow",
        "prefect.resource.name": "retrain",
    }
    # A live run is never declared dead: three beats at Prefect's default frequency fit inside.
    beat = FlowsSettings.model_fields["heartbeat_frequency"].default
    assert trigger.within > timedelta(seconds=3 * beat)
    [action] = automation.actions
    assert isinstance(action, ChangeFlowRunState) and action.state == StateType.CRASHED


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_retrain_whose_process_dies_is_marked_crashed_and_alerts(tmp_path: Path) -> None:
    """The machine dies mid-run (SIGKILL: no hook, no final state); the heartbeats stop, the
    unresponsive-run automation marks the run Crashed, and the failed-run one alerts."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL

    # The file's rule with the shortest window Prefect allows, so the test waits seconds.
    unresponsive = automation_definition(UNRESPONSIVE_AUTOMATION_FILE)
    unresponsive = unresponsive.model_copy(
        update={
            "trigger": unresponsive.trigger.model_copy(update={"within": timedelta(seconds=10)})
        }
    )
    env = clean_env(
        CHURN_RETRAIN_HOME=str(tmp_path / "state"),
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
    )
    args = [
        "--period",
        "2031-01",
        "--data",
        "generated",
        "--generated-rows",
        "30000",
        "--models",
        "lr,lightgbm",
    ]
    server: Any
    ids: list[Any] = []
    process = None
    log = (tmp_path / "run.log").open("wb")
    with log, receiver() as server, get_client(sync_client=True) as client:
        CustomWebhookNotificationBlock(
            name="churn-unresponsive", url=server.url, json_data={"text": "{{subject}}\n{{body}}"}
        ).save("churn-unresponsive-test", overwrite=True)
        try:
            ids.append(
                install_automation(AUTOMATION_FILE, block="custom-webhook/churn-unresponsive-test")
            )
            ids.append(client.create_automation(unresponsive))
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "run", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

            def _running() -> Any:
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.RUNNING])
                        )
                    ),
                )
                return next(
                    (r for r in runs if r.parameters["params"]["period"] == "2031-01"), None
                )

            run = wait_for(
                "the retrain running",
                lambda: _running() if process.poll() is None else "exited",
                seconds=120,
            )
            assert run != "exited", (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(3)  # for its first heartbeat, sent as the flow starts, to reach the server
            os.killpg(process.pid, signal.SIGKILL)  # no hook runs, no final state is reported
            process.wait(timeout=10)

            def _crashed() -> Any:
                state = client.read_flow_run(run.id).state
                return state if state is not None and state.is_crashed() else None

            state = wait_for("the silent run marked Crashed", _crashed, seconds=90)
            wait_for("the alert", lambda: server.bodies or None, seconds=60)
        finally:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            for automation_id in ids:
                client.delete_automation(automation_id)
    assert "No heartbeat" in (state.message or "")
    text = server.texts()[0]
    assert "Crashed" in text and str(run.id) in text
