"""Tell a person what a run decided: always when the champion decays, on request every decision.

Runs after the decision is recorded, one message per run at most. A degraded champion that
stays alerts through the same delivery as the failure alerts and the run completes (one a
challenger replaced needs nobody: the decision message says it, when those are on); a champion below the
floor that no challenger replaced raises `ChampionBelowFloor`, so the run ends Failed (exit 7)
and the failure hook alerts. With `notify_decisions` on, any other decision (a promotion, a
kept champion) and a rollback send a message too: what was decided, by how much, the links.
A run that waits for approval always asks (`request_approval`) and always says how it ended.
"""

from __future__ import annotations

import logging

from tasks.alerts.delivery import deliver_alert
from tasks.alerts.message import Alert
from tasks.decision.record import DecisionRecord
from tasks.errors import ChampionBelowFloor
from tasks.settings import Settings

logger = logging.getLogger(__name__)


def tell_a_person(
    record: DecisionRecord, settings: Settings, *, flow_run_name: str, flow_run_url: str | None
) -> None:
    """Alert on decay; raise `ChampionBelowFloor` when a below-floor champion stays; else,
    with `notify_decisions`, send the decision."""
    health = record.champion_health
    kept = health is not None and record.champion_version_after == health.version
    if health is None or not health.needs_a_person or not kept:
        # Nobody needs to act (a replaced champion included): the decision message, if on;
        # always when a person was asked to approve it.
        if settings.notify_decisions or record.approval is not None:
            also = health.text() if health is not None and health.needs_a_person else ""
            send(_decision_notice(record, flow_run_name, flow_run_url, also=also), settings)
        return
    message = (
        f"{health.text()}; it stays champion ({record.verdict}). "
        f"MLflow run: {record.mlflow_run_url}"
    )
    if health.state == "below-floor":
        raise ChampionBelowFloor(message, record=record)
    degraded = Alert(
        flow="retrain", flow_run_name=flow_run_name, flow_run_id=record.flow_run_id or "",
        state="Completed", period=record.period, source=record.data_source,
        error="ChampionDegraded", message=message, flow_run_url=flow_run_url,
    )  # fmt: skip
    send(degraded, settings)


def _decision_notice(
    record: DecisionRecord, flow_run_name: str, url: str | None, *, also: str = ""
) -> Alert:
    interval = record.decision.interval
    by = f"; {record.decision.metric} change {interval.text()}" if interval else ""
    message = (
        f"{record.verdict}: champion now v{record.champion_version_after or 'none'}{by}. "
        f"{record.reason}. {also + '. ' if also else ''}MLflow run: {record.mlflow_run_url}"
    )
    return Alert(
        flow="retrain", flow_run_name=flow_run_name, flow_run_id=record.flow_run_id or "",
        state="Completed", period=record.period, source=record.data_source,
        error="ChampionPromoted" if record.promoted else "ChampionKept", message=message,
        flow_run_url=url,
    )  # fmt: skip


def notify_rollback(
    text: str, settings: Settings, *, flow_run_name: str, flow_run_id: str, flow_run_url: str | None
) -> None:
    """With `notify_decisions` on, a rollback is announced like a decision."""
    if not settings.notify_decisions:
        return
    alert = Alert(
        flow="rollback", flow_run_name=flow_run_name, flow_run_id=flow_run_id, state="Completed",
        period="", source="", error="ChampionRolledBack", message=text, flow_run_url=flow_run_url,
    )  # fmt: skip
    send(alert, settings)


def send(alert: Alert, settings: Settings) -> None:
    """Deliver; a failed delivery is logged loudly, never raised (the run's outcome stands)."""
    if settings.alert_block is None and settings.alert_url is None:
        logger.warning(
            "%s, but no alert destination is configured: %s", alert.subject, alert.message
        )
        return
    for delivery in deliver_alert(alert, settings):
        if delivery.delivered:
            logger.warning("%s: message sent to %s", alert.subject, delivery.destination)
        else:
            logger.error(
                "%s: the message to %s failed (%s); tell the team by hand: %s",
                alert.subject, delivery.destination, delivery.error, alert.message,
            )  # fmt: skip
