"""A year in the life: generated months with drift, run through the real retrain flow in turn.

Month after month the generator (same seed, so the same customer base, about 96% of customers
shared between consecutive months) produces a snapshot; from month `drift_from` on, the drift
scenario grows linearly to `max_drift` at the last month. Each month is an ordinary `retrain`
flow run (validation, fair holdout, training, comparison, locked promotion, report), all
against one Prefect API (the process's own), so the simulation shows exactly what production
would do. The champion history and a plot of both models' scores per month are the output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from flows.parameters import SimulateParameters
from tasks.data.request import GENERATED
from tasks.decision.record import DecisionRecord


def drift_schedule(months: int, drift_from: int, max_drift: float) -> list[float]:
    """No drift before month `drift_from`, then linear growth to `max_drift` at the last month."""
    ramp = months - drift_from + 1
    return [
        0.0 if m < drift_from else round(max_drift * (m - drift_from + 1) / ramp, 4)
        for m in range(1, months + 1)
    ]


def periods(start: str, months: int) -> list[str]:
    year, month = int(start[:4]), int(start[5:7])
    out = []
    for _ in range(months):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


class SimulatedMonth(BaseModel):
    """One month's outcome, for the table and the plot."""

    period: str
    drift: float
    verdict: str
    promoted: bool
    metric: str
    challenger_version: str | None
    challenger: float | None
    champion_version: str | None
    champion: float | None
    difference: str | None
    champion_after: str | None
    #: What a point-estimate rule (promote on any gain) would have said this month.
    point_rule_promotes: bool | None
    #: The champion's health this month (below-floor: in production the run fails, exit 7).
    health: str | None = None
    #: roc_auc of both models, beside the rule's metric when that is another one.
    challenger_auc: float | None = None
    champion_auc: float | None = None
    holdout_rows: int
    excluded_rows: int
    mlflow_run_id: str


def _month(record: DecisionRecord, drift: float) -> SimulatedMonth:
    metric = record.rule.metric
    champion = record.champion
    interval = record.decision.interval
    return SimulatedMonth(
        period=record.period,
        drift=drift,
        verdict=record.verdict,
        promoted=record.promoted,
        metric=metric,
        challenger_version=record.challenger.version,
        challenger=record.challenger.holdout.get(metric),
        champion_version=champion.version if champion else None,
        champion=champion.holdout.get(metric) if champion else None,
        difference=interval.text() if interval else None,
        champion_after=record.champion_version_after,
        point_rule_promotes=None
        if record.decision.improvement is None
        else record.decision.improvement > 0,
        health=record.champion_health.state if record.champion_health else None,
        challenger_auc=record.challenger.holdout.get("roc_auc"),
        champion_auc=champion.holdout.get("roc_auc") if champion else None,
        holdout_rows=record.holdout_rows,
        excluded_rows=record.holdout_split.excluded_rows if record.holdout_split else 0,
        mlflow_run_id=record.mlflow_run_id,
    )


def month_line(month: SimulatedMonth) -> str:
    def score(value: float | None) -> str:
        return "   -  " if value is None else f"{value:.4f}"

    champion = f"v{month.champion_version}" if month.champion_version else "-"
    point = {None: "-", True: "promote", False: "keep"}[month.point_rule_promotes]
    health = month.health or "-"
    if month.health == "below-floor" and month.champion_after == month.champion_version:
        health = "below-floor!"  # kept below the floor: a production run fails here (exit 7)
    return (
        f"{month.period}  {month.drift:4.2f}  v{month.challenger_version or '?':<3} "
        f"{score(month.challenger)}  {champion:<4} {score(month.champion)}  "
        f"{month.difference or '':<27}  {month.verdict:<26} "
        f"v{month.champion_after or '-':<5} {health:<13} {point}"
    )


HEADER = (
    "month    drift  challenger   champion     challenger-champion [CI]     verdict"
    "                    now    health        point rule"
)


def simulate(
    params: SimulateParameters,
    *,
    out_dir: Path,
    on_month: Callable[[SimulatedMonth], None] | None = None,
) -> tuple[list[SimulatedMonth], Path]:
    """Run the retrain flow for each month in turn; returns the months and the plot's path.

    Uses the MLflow store and registry of the current settings (the CLI points them at a
    fresh directory). `on_month` is called after each month (the CLI prints a line).
    """
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain
    from tasks.errors import ChampionBelowFloor
    from tasks.report.plots import simulation_figure

    drifts = drift_schedule(params.months, params.drift_from, params.max_drift)
    months: list[SimulatedMonth] = []
    for period, drift in zip(periods(params.start, params.months), drifts, strict=True):
        state = retrain(
            RetrainParameters(
                period=period,
                data=GENERATED,
                seed=params.seed,
                models=params.models,
                folds=params.folds,
                rule=params.rule,
                generated_rows=params.rows,
                drift=drift,
                scenario=params.scenario if drift > 0 else "none",
                drift_gate=params.drift_gate,
            ),
            return_state=True,
        )
        outcome = state.result(raise_on_failure=False)
        # A champion kept below the floor fails a production run (exit 7, an alert): here the
        # month is reported (health `below-floor!`) and the year goes on.
        if isinstance(outcome, ChampionBelowFloor) and isinstance(outcome.record, DecisionRecord):
            outcome = outcome.record
        if isinstance(outcome, BaseException):
            raise outcome
        record: DecisionRecord = outcome
        months.append(_month(record, drift))
        if on_month is not None:
            on_month(months[-1])
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"simulation-{params.scenario}-{params.start}-{params.months}m"
    (out_dir / f"{stem}.json").write_text(
        json.dumps(
            {
                "parameters": params.model_dump(mode="json"),
                "months": [m.model_dump(mode="json") for m in months],
            },
            indent=2,
        )
    )
    plot = simulation_figure(
        [m.model_dump() for m in months],
        out_dir / f"{stem}.png",
        title=f"{params.scenario} from month {params.drift_from}: champion vs challenger",
        floor=params.rule.floor,
    )
    return months, plot
