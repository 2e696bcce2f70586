"""Approval before promotion, on the session's real Prefect server, alerts to 127.0.0.1.

A winning challenger pauses its run (Prefect's typed Resume form); the tests answer through the
Prefect API as the UI does (`resume_flow_run` with the form's input) and check the alias, the
record and the messages: approved promotes and names the reviewer; rejected and unanswered keep
the champion under named verdicts; an approval that arrives after another run moved the
champion is refused as stale (`conflict`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tasks.decision.approval import ApprovalOutcome, apply_approval
from tasks.decision.verdict import Decision
from tasks.report.summary import summary
from tests.alert_receivers import AlertReceiver, receiver

FAST = {"models": ["lr"], "folds": 2, "generated_rows": 2000, "seed": 3, "data": "generated"}
# A constant-score champion v1, and a floor it meets: a kept champion is not below the floor.
WEAK = {**FAST, "models": ["dummy"], "rule": {"floor": 0.0}}
LOW_FLOOR = {**FAST, "rule": {"floor": 0.0}}
MODEL = "telco-churn"


def _decision(verdict: str = "promote", promote: bool = True) -> Decision:
    return Decision(verdict=verdict, promote=promote, reason="it is better", metric="roc_auc",  # type: ignore[arg-type]
                    challenger_score=0.84, champion_score=0.5, improvement=0.34)  # fmt: skip


def _outcome(status: str) -> ApprovalOutcome:
    return ApprovalOutcome(status=status, reviewer="ana", comment="no", asked_at="t0",  # type: ignore[arg-type]
                           answered_at="t1", timeout_minutes=5)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "verdict"),
    [("approved", "promote"), ("rejected", "rejected-by-reviewer"),
     ("timed-out", "approval-timeout")],
)  # fmt: skip
def test_the_answer_decides_the_verdict(status: str, verdict: str) -> None:
    decided = apply_approval(_decision(), _outcome(status))
    assert decided.verdict == verdict
    assert decided.promote is (status == "approved")
    if status != "approved":
        assert decided.superseded == "promote" and "champion stays" in decided.reason
    # A decision that does not promote is not changed by any answer, nor by no question.
    kept = _decision("keep-champion", promote=False)
    assert apply_approval(kept, _outcome(status)) == kept
    assert apply_approval(_decision(), None) == _decision()


# --- through the flow ---------------------------------------------------------------------------


@pytest.fixture
def alerts(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertReceiver]:
    with receiver() as server:
        monkeypatch.setenv("CHURN_RETRAIN_ALERT_URL", server.url)
        yield server


def _paused_run(timeout: float = 120) -> UUID:
    """The flow run that waits for approval (each test's runs are the only ones paused)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout
    paused = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
    )
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=paused)
            if runs:
                [run] = runs
                return run.id
            time.sleep(0.5)
    raise AssertionError(f"no flow run paused within {timeout} s")


def _in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    """Run `work` in a thread; the returned call joins it (bounded) and gives its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(timeout=300)
        assert not thread.is_alive(), "the paused run did not finish"
        if "error" in box:
            raise box["error"]
        return box["result"]

    return join


def _champion() -> str:
    from mlflow.tracking import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(MODEL, "champion").version)


def _waiting_run(period: str, **approval: Any) -> Callable[[], Any]:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    params = RetrainParameters(
        period=period, approval={"required": True, "poll_seconds": 1, **approval}, **LOW_FLOOR
    )
    return _in_thread(lambda: retrain(params))


def _resume(flow_run_id: UUID, **answer: Any) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(flow_run_id, run_input=answer)


@pytest.mark.usefixtures("prefect_server")
def test_an_approved_challenger_is_promoted_and_the_record_names_the_reviewer(
    alerts: AlertReceiver,
) -> None:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain
    from tasks.registry.history import read_history

    retrain(RetrainParameters(period="2026-01", **WEAK))
    alerts.clear()
    finish = _waiting_run("2026-02")
    flow_run_id = _paused_run()
    # Paused before promoting: the champion has not moved; the reviewer was asked, with a link.
    assert _champion() == "1"
    [asked] = alerts.bodies
    assert (
        "APPROVAL NEEDED" in asked["subject"]
        and "challenger v2 would become champion" in (asked["text"])
    )
    assert "press Resume" in asked["text"] and asked["alert"]["flow_run_id"] == str(flow_run_id)
    alerts.clear()
    _resume(flow_run_id, approve=True, reviewer="ana", comment="looks right")
    record = finish()
    assert record.promoted and record.verdict == "promote" and _champion() == "2"
    assert record.approval is not None and record.approval.status == "approved"
    assert record.approval.reviewer == "ana" and record.approval.comment == "looks right"
    assert record.approval.answered_at is not None
    assert "approved by ana" in summary(record)
    # The decision is in the MLflow run's tags too, and the promotion in the history.
    from mlflow.tracking import MlflowClient

    tags = MlflowClient().get_run(record.mlflow_run_id).data.tags
    assert tags["decision.approval"].startswith("approved by ana at ")
    assert read_history(MlflowClient(), MODEL)[-1].to_version == "2"
    # The approval's outcome is announced even with decision notifications off.
    [done] = alerts.bodies
    assert "challenger PROMOTED" in done["subject"]


@pytest.mark.usefixtures("prefect_server")
def test_a_rejected_challenger_leaves_the_champion(alerts: AlertReceiver) -> None:
    from mlflow.tracking import MlflowClient

    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    retrain(RetrainParameters(period="2026-01", **WEAK))
    finish = _waiting_run("2026-02")
    _resume(_paused_run(), approve=False, reviewer="bo", comment="not before the audit")
    record = finish()
    assert record.verdict == "rejected-by-reviewer" and not record.promoted
    assert record.decision.superseded == "promote" and "not before the audit" in record.reason
    assert _champion() == "1" and record.champion_version_after == "1"
    version = MlflowClient().get_model_version(MODEL, record.challenger.version)
    assert version.tags.get("promoted") == "false"
    assert version.tags.get("verdict") == "rejected-by-reviewer"


@pytest.mark.usefixtures("prefect_server")
def test_no_answer_within_the_timeout_keeps_the_champion_and_completes(
    alerts: AlertReceiver,
) -> None:
    from prefect.client.orchestration import get_client

    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    retrain(RetrainParameters(period="2026-01", **WEAK))
    alerts.clear()
    params = RetrainParameters(
        period="2026-02", approval={"required": True, "timeout_minutes": 0.05, "poll_seconds": 1},
        **LOW_FLOOR,
    )  # fmt: skip
    state = retrain(params, return_state=True)
    assert state.is_completed(), state
    record = state.result()
    assert record.verdict == "approval-timeout" and _champion() == "1"
    assert record.approval is not None and record.approval.status == "timed-out"
    assert record.approval.reviewer is None
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.state is not None and run.state.is_completed()
    # Asked, then told it timed out (the champion stays).
    subjects = [body["subject"] for body in alerts.bodies]
    assert len(subjects) == 2 and "APPROVAL NEEDED" in subjects[0], subjects
    assert "champion KEPT" in subjects[1]


@pytest.mark.usefixtures("prefect_server")
def test_an_approval_after_another_run_promoted_is_refused_as_stale(
    alerts: AlertReceiver,
) -> None:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    retrain(RetrainParameters(period="2026-01", **WEAK))
    finish = _waiting_run("2026-02")
    flow_run_id = _paused_run()
    # Meanwhile another month's run (no approval asked) promotes its own challenger.
    other = retrain(RetrainParameters(period="2026-03", **FAST))
    assert other.promoted and _champion() == other.challenger.version == "3"
    _resume(flow_run_id, approve=True, reviewer="ana", comment="")
    record = finish()
    # The approved comparison was against v1: the re-check under the lock refuses it.
    assert record.verdict == "conflict" and not record.promoted
    assert record.decision.superseded == "promote"
    assert record.approval is not None and record.approval.status == "approved"
    assert _champion() == "3" and record.champion_version_after == "3"


def test_the_command_line_refuses_approval_without_a_reachable_server(
    state_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cli.main import main

    with temporary_settings(updates={PREFECT_API_URL: None}):
        assert main(["run", "--data", "generated", "--approval.required"]) == 2
    err = capsys.readouterr().err
    assert "--approval.required waits for a person in the Prefect UI" in err
    assert "Traceback" not in err
