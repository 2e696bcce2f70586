"""What an alert says: the run, the month, the source and the reason, without secrets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tasks.data.configured import DATA_VARIABLE
from tasks.data.request import GENERATED, current_period, resolve_source
from tasks.errors import ChurnRetrainError, SnapshotRejected
from tasks.gate.report import (
    ColumnFailures,
    failures_by_column,
    rejection_failures,
)
from tasks.settings import redact_uri

if TYPE_CHECKING:
    pass


_MAX_MESSAGE = 3000
_HEADLINES = {
    "SnapshotRejected": "snapshot REJECTED",
    "ChampionDegraded": "champion DEGRADED",
    "ChampionBelowFloor": "champion BELOW FLOOR",
    "ChampionPromoted": "challenger PROMOTED",
    "ChampionKept": "champion KEPT",
    "ChampionRolledBack": "champion ROLLED BACK",
    "ApprovalNeeded": "APPROVAL NEEDED",
}
#: Messages that report a decision, not an error.
_NOTICES = frozenset(
    {"ChampionDegraded", "ChampionPromoted", "ChampionKept", "ChampionRolledBack", "ApprovalNeeded"}
)
_CLOSINGS = {
    "SnapshotRejected": "The champion model and the registry were not changed by this run's gate.",
    "ChampionDegraded": "The run completed; look at the champion's monthly scores and this "
    "month's data (drift) before it falls below the floor.",
    "ChampionBelowFloor": "The champion was kept (no challenger could replace it); it scores "
    "below the floor on fresh data: retrain with other models or data, or roll back.",
    "ChampionPromoted": "The registry alias moved; `churn-retrain rollback` undoes it.",
    "ChampionKept": "The champion stays.",
    "ChampionRolledBack": "The promotion history records the move.",
    "ApprovalNeeded": "The champion stays until the run is resumed with approve; no answer "
    "keeps it (verdict approval-timeout).",
}


@dataclass(frozen=True)
class Alert:
    """What a person needs to act on a failed run."""

    flow: str
    flow_run_name: str
    flow_run_id: str
    state: str
    period: str
    source: str
    error: str
    message: str
    failures: tuple[ColumnFailures, ...] = ()
    report: str | None = None
    flow_run_url: str | None = None

    @property
    def subject(self) -> str:
        what = _HEADLINES.get(self.error, f"run {self.state}")
        period = f" {self.period}" if self.period else ""
        return f"churn-retrain{period}: {what} ({self.flow} run {self.flow_run_name})"

    def text(self) -> str:
        lines = [
            self.subject,
            f"Flow run: {self.flow}/{self.flow_run_name} ({self.flow_run_id}), state {self.state}",
            f"Period: {self.period}",
            f"Source: {self.source}",
            f"Decision: {self.message}"
            if self.error in _NOTICES
            else f"Error: {self.error}: {self.message}",
        ]
        if self.failures:
            lines.append("Failed checks by column:")
            for entry in self.failures:
                rows = "" if entry.rows is None else f", {entry.rows:,} rows"
                lines.append(
                    f"  {entry.column}: {entry.checks} failed{rows}: {'; '.join(entry.problems)}"
                )
        if self.report:
            lines.append(f"Report: {self.report}")
        if self.flow_run_url:
            lines.append(f"Flow run: {self.flow_run_url}")
        lines.append(_CLOSINGS.get(self.error, _CLOSINGS["SnapshotRejected"]))
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """JSON for a webhook: `text` for Slack-style receivers, the fields for machines."""
        fields = json.loads(json.dumps(asdict(self)))  # tuples become lists, as received
        return {"text": self.text(), "subject": self.subject, "alert": fields}


def build_alert(
    *,
    flow: str,
    flow_run_name: str,
    flow_run_id: str,
    state: str,
    period: str,
    source: str,
    error: BaseException | None,
    report: str | None = None,
    flow_run_url: str | None = None,
) -> Alert:
    """An alert from a run's outcome; only our own errors' messages are quoted."""
    failures: tuple[ColumnFailures, ...] = ()
    if isinstance(error, SnapshotRejected):
        failures = tuple(failures_by_column(rejection_failures(error)))
        reported = getattr(error.report, "source", None)
        source = reported if isinstance(reported, str) else source
    if error is None:
        name, message = "unknown", f"the run ended {state} without an exception"
    elif isinstance(error, ChurnRetrainError):
        name, message = type(error).__name__, str(error)[:_MAX_MESSAGE]
    else:
        # Library messages can quote data or URLs with credentials: the type only.
        name = type(error).__name__
        message = "see the flow run's logs for the traceback"
    return Alert(
        flow=flow,
        flow_run_name=flow_run_name,
        flow_run_id=flow_run_id,
        state=state,
        period=period,
        source=source,
        error=name,
        message=message,
        failures=failures,
        report=report,
        flow_run_url=flow_run_url,
    )


def describe_source(parameters: dict[str, Any], period: str) -> str:
    """The run's data source from its parameters, fit for an alert (credentials removed)."""
    params = parameters.get("params") or {}
    data = params.get("data") if isinstance(params, dict) else None
    if data == GENERATED:
        return "generated data"
    if not data:
        return f"the configured data source (Prefect Variable {DATA_VARIABLE})"
    return redact_uri(resolve_source(data, period))


def run_period(parameters: dict[str, Any], started: datetime | None) -> str:
    """The period the run worked on: its parameter, else the month it was scheduled for."""
    params = parameters.get("params") or {}
    period = params.get("period") if isinstance(params, dict) else None
    return str(period) if period else current_period(started)
