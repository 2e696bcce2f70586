"""Tell a person when the champion decays: an alert for `degraded`, a Failed run for `below-floor`.

Runs after the decision is recorded. A degraded champion alerts through the same delivery as the
failure alerts and the run completes; a champion below the floor that no challenger replaced
raises `ChampionBelowFloor`, so the run ends Failed (exit 7) and the failure hook alerts.
"""

from __future__ import annotations

import logging

from tasks.alerts.delivery import deliver_alert
from tasks.alerts.message import Alert
from tasks.decision.record import DecisionRecord
from tasks.errors import ChampionBelowFloor
from tasks.settings import Settings

logger = logging.getLogger(__name__)


def tell_about_champion_health(
    record: DecisionRecord, settings: Settings, *, flow_run_name: str, flow_run_url: str | None
) -> None:
    """Alert on `degraded`; raise `ChampionBelowFloor` when a below-floor champion stays."""
    health = record.champion_health
    if health is None or not health.needs_a_person:
        return
    kept = record.champion_version_after == health.version
    outcome = (
        f"it stays champion ({record.verdict})"
        if kept
        else f"v{record.champion_version_after} replaced it ({record.verdict})"
    )
    message = f"{health.text()}; {outcome}. MLflow run: {record.mlflow_run_url}"
    if health.state == "below-floor" and kept:
        raise ChampionBelowFloor(message)
    alert = Alert(
        flow="retrain", flow_run_name=flow_run_name, flow_run_id=record.flow_run_id or "",
        state="Completed", period=record.period, source=record.data_source,
        error="ChampionDegraded" if health.state == "degraded" else "ChampionBelowFloor",
        message=message, flow_run_url=flow_run_url,
    )  # fmt: skip
    if settings.alert_block is None and settings.alert_url is None:
        logger.warning(
            "champion %s, but no alert destination is configured: %s", health.state, message
        )
        return
    for delivery in deliver_alert(alert, settings):
        if delivery.delivered:
            logger.warning("champion %s: alert sent to %s", health.state, delivery.destination)
        else:
            logger.error(
                "champion %s: the alert to %s failed (%s); tell the team by hand: %s",
                health.state, delivery.destination, delivery.error, message,
            )  # fmt: skip
