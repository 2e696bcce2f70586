"""The flow hook: a failed or crashed run sends its alert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tasks.alerts.delivery import NOT_DELIVERED, deliver_alert
from tasks.alerts.message import Alert, build_alert, describe_source, run_period
from tasks.gate.report import (
    REPORT_HTML,
    report_directory,
)
from tasks.runtime.flow_run import flow_run_url
from tasks.settings import Settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import State


def alert_on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect `on_failure`/`on_crashed` hook: send the alert; say so loudly if it cannot go out.

    Never raises: the run's own error is what its state must show.
    """
    from prefect.logging.loggers import flow_run_logger

    log = flow_run_logger(flow_run, flow)
    try:
        settings = Settings()
        alert = alert_for_run(flow.name, flow_run, state, settings)
        if settings.alert_block is None and settings.alert_url is None:
            log.warning(
                "No alert destination configured (CHURN_RETRAIN_ALERT_URL or "
                "CHURN_RETRAIN_ALERT_BLOCK): nobody was notified that this run failed"
            )
            return
        deliveries = deliver_alert(alert, settings)
    except Exception as exc:
        log.error("%s: the alert could not be prepared (%s)", NOT_DELIVERED, type(exc).__name__)
        return
    for delivery in deliveries:
        if delivery.delivered:
            log.info(
                "Alert sent to %s (attempt %d, %.1f s)",
                delivery.destination,
                delivery.attempts,
                delivery.seconds,
            )
        else:
            log.error(
                "%s to %s after %d attempt(s) in %.1f s: %s. The run failed with %s; "
                "tell the team by hand.",
                NOT_DELIVERED,
                delivery.destination,
                delivery.attempts,
                delivery.seconds,
                delivery.error,
                alert.error,
            )


def alert_for_run(
    flow_name: str, flow_run: FlowRun, state: State[Any], settings: Settings
) -> Alert:
    """Gather the alert's facts from the run: parameters, exception, report, UI link."""
    parameters = dict(flow_run.parameters or {})
    # As the flow does: the month the run was scheduled for, not the one it started in.
    started = flow_run.expected_start_time or flow_run.start_time or datetime.now(UTC)
    period = run_period(parameters, started)
    report = report_directory(settings, str(flow_run.id)) / REPORT_HTML
    return build_alert(
        flow=flow_name,
        flow_run_name=flow_run.name,
        flow_run_id=str(flow_run.id),
        state=state.name or str(state.type),
        period=period,
        source=describe_source(parameters, period),
        error=_state_error(state),
        report=report.as_uri() if report.is_file() else None,
        flow_run_url=flow_run_url(str(flow_run.id)),
    )


def _state_error(state: State[Any]) -> BaseException | None:
    try:
        result = state.result(raise_on_failure=False)
    except Exception:  # the result could not be read back: the type of the state is enough
        return None
    return result if isinstance(result, BaseException) else None
