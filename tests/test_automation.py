"""The server-side 'retrain failed' automation: the file is a valid Prefect automation, and on a
real (temporary) Prefect server it notifies a receiver on 127.0.0.1 when a retrain run fails."""

from __future__ import annotations

import time
from pathlib import Path
from uuid import uuid4

import pytest
from alert_receivers import AlertReceiver, receiver

from flows.retrain import RetrainParameters, retrain
from tasks.alerts import (
    AUTOMATION_FILE,
    PLACEHOLDER_BLOCK_ID,
    automation_definition,
    install_automation,
)


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
