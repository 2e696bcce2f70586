"""Publish a decision: the record and the comparison report in MLflow and as a Prefect artifact."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.tracking import MlflowClient

from tasks.decision.record import DecisionRecord
from tasks.decision.rule import FITNESS_METRIC
from tasks.report.markdown import record_markdown
from tasks.report.summary import metrics_rows, segment_rows
from tasks.steps import retried_step

if TYPE_CHECKING:
    from tasks.decision.compare import Comparison
    from tasks.decision.health import ChampionHealth
    from tasks.decision.verdict import Decision
    from tasks.registry.aliases import ChampionRef
    from tasks.registry.reign import ReignPoint
    from tasks.tracking.runs import RunRef


DECISION_ARTIFACT = "decision.json"
#: Run artifact folder of the comparison report (plots and the metrics table).
REPORT_DIR = "comparison"
#: The champion's score over its reign, this month included (in `REPORT_DIR`).
REIGN_PLOT = "reign.png"
#: Recall and retention value against the share of customers called, capacity marked.
CAPACITY_PLOT = "capacity.png"


@retried_step("record-decision")  # tags, identical metrics and files again: safe to repeat
def record_decision(record: DecisionRecord) -> None:
    """Write the record to its MLflow run (tags, metrics, JSON) and as a Prefect artifact."""
    from mlflow.entities import Metric, RunTag
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    client = MlflowClient()
    metrics = [Metric(f"holdout_{k}", v, 0, 0) for k, v in record.challenger.holdout.items()]
    if record.intervals is not None:  # next year's health check compares with these
        for name, interval in record.intervals.challenger.items():
            metrics += [
                Metric(f"holdout_{name}_lower", interval.lower, 0, 0),
                Metric(f"holdout_{name}_upper", interval.upper, 0, 0),
            ]
    if record.champion is not None:
        metrics += [
            Metric(f"champion_holdout_{k}", v, 0, 0) for k, v in record.champion.holdout.items()
        ]
    if record.champion is not None and record.intervals is not None:  # the reign plots these
        for name, interval in record.intervals.champion.items():
            metrics += [
                Metric(f"champion_holdout_{name}_lower", interval.lower, 0, 0),
                Metric(f"champion_holdout_{name}_upper", interval.upper, 0, 0),
            ]
    differences = dict(record.intervals.difference) if record.intervals is not None else {}
    if record.decision.interval is not None:  # the rule's own (DeLong's, with method delong)
        differences[record.decision.metric] = record.decision.interval
    for name in dict.fromkeys([record.decision.metric, FITNESS_METRIC]):  # AUC always beside
        if (change := differences.get(name)) is not None:
            metrics += [
                Metric(f"diff_{name}", change.estimate, 0, 0),
                Metric(f"diff_{name}_lower", change.lower, 0, 0),
                Metric(f"diff_{name}_upper", change.upper, 0, 0),
            ]
    client.log_batch(
        record.mlflow_run_id,
        metrics=metrics,
        tags=[RunTag(k, v) for k, v in record.tags().items()],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / DECISION_ARTIFACT
        path.write_text(json.dumps(record.model_dump(mode="json"), indent=2))
        client.log_artifact(record.mlflow_run_id, str(path))
    write_report_markdown(record)
    create_markdown_artifact(
        key="retrain-decision",
        markdown=record_markdown(record),
        description=f"Retrain decision for {record.period}",
    )
    tables = {
        "retrain-metrics": (
            metrics_rows(record),
            "Holdout metrics of challenger and champion",
        )
    }
    if record.decision.segments:
        tables["retrain-segments"] = (
            segment_rows(record),
            "Challenger vs champion by segment",
        )
    for key, (rows, what) in tables.items():
        create_table_artifact(key=key, table=rows, description=f"{what}, {record.period}")
    create_link_artifact(
        key="retrain-mlflow-run",
        link=record.mlflow_run_url,
        link_text=f"MLflow run of the {record.period} decision",
    )
    if record.champion_url:
        create_link_artifact(
            key="retrain-champion",
            link=record.champion_url,
            link_text=f"{record.model_name} champion version {record.champion_version_after}",
        )


@retried_step("log-comparison-report")
def log_comparison_report(
    run: RunRef,
    comparison: Comparison,
    version: str,
    champion: ChampionRef | None,
    health: ChampionHealth | None,
    decision: Decision,
) -> list[str]:
    """ROC, precision-recall, calibration and lift plots of the challenger (`version`) and the
    champion as run artifacts, what each model's list brings against the capacity
    (`capacity.png`), and the champion's reign with this month's point.

    Returns the artifact paths (empty when the holdout could not be scored and no champion).
    """
    run_id, period, rule = run.run_id, run.period, run.rule
    challenger_label = f"challenger v{version}"
    champion_label = f"champion v{champion.version}" if champion else None
    title = f"{run.model} {period}: {decision.verdict}"
    from tasks.registry.reign import read_reign
    from tasks.report.plots import capacity_figure, comparison_figure, reign_figure

    artifacts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / REPORT_DIR
        if comparison.labels is not None and comparison.challenger_proba is not None:
            models = {challenger_label: comparison.challenger_proba}
            if comparison.champion_proba is not None and champion_label:
                models[champion_label] = comparison.champion_proba
            comparison_figure(comparison.labels, models, folder / "comparison.png", title=title)
            artifacts.append(f"{REPORT_DIR}/comparison.png")
            if comparison.terms is not None:
                terms = comparison.terms
                capacity_figure(
                    comparison.labels,
                    models,
                    folder / CAPACITY_PLOT,
                    contacts=terms.contacts,
                    gains=terms.gains,
                    contact_cost=terms.contact_cost,
                    title=title,
                )
                artifacts.append(f"{REPORT_DIR}/{CAPACITY_PLOT}")
        if champion is not None:
            # This run's decision is not recorded yet: its month is added from the comparison.
            month = reign_month(run_id, period, comparison, FITNESS_METRIC, health)
            reign = read_reign(champion.name, champion.version, metric=FITNESS_METRIC)
            reign = reign.with_month(month).model_copy(
                update={"floor": rule.floor, "tolerance": rule.health_tolerance}
            )
            reign_figure(reign, folder / REIGN_PLOT)
            artifacts.append(f"{REPORT_DIR}/{REIGN_PLOT}")
        if artifacts:
            MlflowClient().log_artifacts(run_id, str(folder), REPORT_DIR)
    return artifacts


def reign_month(
    run_id: str,
    period: str,
    comparison: Comparison,
    metric: str,
    health: ChampionHealth | None,
) -> ReignPoint:
    """This month's point of the champion's reign, from the comparison and its health."""
    from tasks.registry.reign import ReignPoint

    interval = comparison.intervals.champion.get(metric) if comparison.intervals else None
    return ReignPoint(
        period=period,
        estimate=(comparison.champion or {}).get(metric),
        lower=interval.lower if interval else None,
        upper=interval.upper if interval else None,
        state=health.state if health else None,
        run_id=run_id,
    )


def write_report_markdown(record: DecisionRecord) -> None:
    """The record's markdown as a run artifact next to the plots (`comparison/report.md`)."""
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.md"
        path.write_text(record_markdown(record) + "\n")
        client.log_artifact(record.mlflow_run_id, str(path), REPORT_DIR)
