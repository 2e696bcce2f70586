"""A backfill: the retrain run over a range of past months, in order, one at a time.

Which months it runs and which it skips (decided before: a FINISHED retrain run of that month
carries its verdict, the idempotency key a resumed backfill relies on), what each month ended
with, the progress line and the closing table. The flow (flows/backfill.py) wires them around
the real retrain flow, one sub-run per month.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from tasks.data.period import next_period

if TYPE_CHECKING:
    from tasks.decision.record import DecisionRecord

#: How a month of the range ended: decided by this backfill, decided before (skipped),
#: rejected by the gate, failed otherwise, or not run (after the backfill stopped).
MonthStatus = Literal["decided", "skipped", "rejected", "failed", "not-run"]
#: Most months one backfill covers: 10 years.
MAX_MONTHS = 120
#: Bound on the decided runs read back (re-runs included).
_MAX_RUNS = 5000


class BackfillMonth(BaseModel):
    """One month of the range, as the closing table shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: str
    status: MonthStatus
    verdict: str | None = None
    #: The champion after the month's decision, and its score on the month's fresh rows.
    champion: str | None = None
    metric: str | None = None
    score: float | None = None
    health: str | None = None
    #: Why it stopped (a rejection's or failure's message), or which run decided it.
    note: str | None = None
    mlflow_run_id: str | None = None


def month_range(start: str, end: str) -> list[str]:
    """Every month from `start` to `end` (YYYY-MM), both included."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    months = [start]
    while months[-1] < end:
        months.append(next_period(months[-1]))
        if len(months) > MAX_MONTHS:
            raise ValueError(f"{start}..{end} is over {MAX_MONTHS} months: split the backfill")
    return months


def _score(tags: Mapping[str, str], metrics: Mapping[str, float]) -> float | None:
    """The score of the champion after the decision: the challenger's when it was promoted
    (or there was no champion), else the champion's, on the month's holdout."""
    metric = tags.get("decision.metric", "roc_auc")
    after = tags.get("decision.champion_version_after")
    if after and after == tags.get("decision.challenger_version"):
        return metrics.get(f"holdout_{metric}")
    return metrics.get(f"champion_holdout_{metric}")


def month_from_run(
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    *,
    run_id: str,
    status: MonthStatus = "skipped",
) -> BackfillMonth:
    """A month decided by a retrain run, from the run's tags and metrics."""
    return BackfillMonth(
        period=tags["data.period"],
        status=status,
        verdict=tags.get("decision.verdict"),
        champion=tags.get("decision.champion_version_after") or None,
        metric=tags.get("decision.metric"),
        score=_score(tags, metrics),
        health=tags.get("champion.health"),
        note=f"decided before by run {run_id}" if status == "skipped" else None,
        mlflow_run_id=run_id,
    )


def month_from_record(record: DecisionRecord) -> BackfillMonth:
    """A month this backfill decided, from its decision record."""
    return month_from_run(
        record.tags(),
        {
            **{f"holdout_{k}": v for k, v in record.challenger.holdout.items()},
            **(
                {f"champion_holdout_{k}": v for k, v in record.champion.holdout.items()}
                if record.champion
                else {}
            ),
        },
        run_id=record.mlflow_run_id,
        status="decided",
    )


def find_decided_months(experiment_name: str, periods: Iterable[str]) -> dict[str, BackfillMonth]:
    """The months of `periods` a FINISHED retrain run of the experiment has decided (the
    latest run of a month wins): a backfill skips them, so a stopped one resumes."""
    from mlflow.tracking import MlflowClient

    wanted = set(periods)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None or not wanted:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        max_results=_MAX_RUNS,
    )
    decided: dict[str, BackfillMonth] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get("data.period") in wanted and tags.get("decision.verdict"):
            month = month_from_run(tags, run.data.metrics, run_id=run.info.run_id)
            decided[month.period] = month
    return decided


def progress_line(done: int, total: int, month: BackfillMonth, *, width: int = 24) -> str:
    """`[#########...............] 3/8 months  2026-03 decided: promote (champion v2)`."""
    filled = round(width * done / total) if total else width
    outcome = month.verdict or month.status
    champion = f" (champion v{month.champion})" if month.champion else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} months  "
        f"{month.period} {month.status}: {outcome}{champion}"
    )


def _cells(month: BackfillMonth) -> list[str]:
    score = "-" if month.score is None else f"{month.metric} {month.score:.4f}"
    champion = f"v{month.champion}" if month.champion else "-"
    return [month.period, month.status, month.verdict or "-", champion, score, month.health or "-"]


_HEADER = ["month", "status", "verdict", "champion", "score", "health"]


def table_text(months: Iterable[BackfillMonth]) -> str:
    """The closing table, aligned for a terminal."""
    rows = [_HEADER, *(_cells(m) for m in months)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def table_markdown(months: Iterable[BackfillMonth]) -> str:
    """The closing table as markdown (the Prefect artifact)."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(_cells(m)) + " |" for m in months]
    return "\n".join(lines)


def closing_months(
    periods: list[str], skipped: Mapping[str, BackfillMonth], ran: Iterable[BackfillMonth]
) -> list[BackfillMonth]:
    """Every month of the range in order: skipped, run, or not run (after a stop)."""
    by_period = {**skipped, **{m.period: m for m in ran}}
    return [by_period.get(p) or BackfillMonth(period=p, status="not-run") for p in periods]


def write_backfill(months: list[BackfillMonth], directory: Path, stem: str) -> Path:
    """The table as JSON beside the reign plots; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.json"
    path.write_text(json.dumps([m.model_dump(mode="json") for m in months], indent=2))
    return path


def settle_month(period: str, outcome: object) -> BackfillMonth:
    """What a month's retrain sub-run ended with (`outcome`: its record or its exception)."""
    from tasks.decision.record import DecisionRecord
    from tasks.errors import ChampionBelowFloor, SnapshotRejected

    # A champion kept below the floor is decided and recorded (the sub-run failed and alerted).
    if isinstance(outcome, ChampionBelowFloor) and isinstance(outcome.record, DecisionRecord):
        outcome = outcome.record
    if isinstance(outcome, DecisionRecord):
        return month_from_record(outcome)
    note = str(outcome).splitlines()[0][:300] if str(outcome) else type(outcome).__name__
    status: MonthStatus = "rejected" if isinstance(outcome, SnapshotRejected) else "failed"
    return BackfillMonth(period=period, status=status, note=note)
