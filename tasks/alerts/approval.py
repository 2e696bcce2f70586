"""Approval before promotion, the asking and the waiting: a message tells the reviewer a winning
challenger waits (`request_approval`), then the run pauses with Prefect's `pause_flow_run`, so
the Prefect UI shows a typed "Resume" form, until the answer or the timeout (`await_approval`).
What the answer means for the verdict is `tasks.decision.approval`'s (pure)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tasks.alerts.message import Alert
from tasks.alerts.notices import send
from tasks.decision.approval import (
    PAUSE_KEY,
    ApprovalAnswer,
    ApprovalOutcome,
    ApprovalPolicy,
    now_text,
)
from tasks.decision.verdict import Decision
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.tracking.runs import RunRef

logger = logging.getLogger(__name__)


def request_approval(
    decision: Decision, settings: Settings, run: RunRef, *, version: str, policy: ApprovalPolicy
) -> None:
    """Tell the reviewer a challenger waits for them: what it won by, where to answer, until when."""
    interval = decision.interval
    by = f" ({decision.metric} change {interval.text()})" if interval else ""
    where = run.flow_run_url or f"flow run {run.flow_run_name} ({run.flow_run_id})"
    message = (
        f"challenger v{version} would become champion{by}: {decision.reason}. Approve or "
        f"reject it within {policy.timeout_minutes:g} min: open {where} in the Prefect UI and "
        f"press Resume. MLflow run: {run.run_url}"
    )
    logger.warning("Waiting for approval: %s", message)
    alert = Alert(
        flow="retrain",
        flow_run_name=run.flow_run_name,
        flow_run_id=run.flow_run_id,
        state="Paused",
        period=run.period,
        source="",
        error="ApprovalNeeded",
        message=message,
        flow_run_url=run.flow_run_url,
    )
    send(alert, settings)


def await_approval(policy: ApprovalPolicy, *, flow_run_id: str) -> ApprovalOutcome:
    """Pause this flow run until the reviewer answers or the timeout passes.

    On timeout the run is put back to Running (Prefect would otherwise end a never-resumed
    run Failed whatever it does next), so it records its verdict and completes.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run
    from prefect.states import Running

    asked = now_text()
    seconds = max(1, round(policy.timeout_minutes * 60))
    try:
        answer = pause_flow_run(
            wait_for_input=ApprovalAnswer,
            timeout=seconds,
            poll_interval=min(policy.poll_seconds, seconds),
            key=PAUSE_KEY,
        )
    except FlowPauseTimeout:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                flow_run_id, Running(message="approval timed out; the champion stays"), force=True
            )
        logger.warning("No approval within %g min: the champion stays", policy.timeout_minutes)
        return ApprovalOutcome(status="timed-out", asked_at=asked,
                               timeout_minutes=policy.timeout_minutes)  # fmt: skip
    outcome = ApprovalOutcome(
        status="approved" if answer.approve else "rejected",
        reviewer=answer.reviewer,
        comment=answer.comment,
        asked_at=asked,
        answered_at=now_text(),
        timeout_minutes=policy.timeout_minutes,
    )
    logger.info("Promotion %s", outcome.text())
    return outcome
