"""Publish a decision: the record and the comparison report in MLflow and as a Prefect artifact."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.tracking import MlflowClient

from tasks.decision.record import DecisionRecord
from tasks.steps import retried_step

if TYPE_CHECKING:
    from tasks.decision.compare import Comparison


DECISION_ARTIFACT = "decision.json"
#: Run artifact folder of the comparison report (plots and the metrics table).
REPORT_DIR = "comparison"


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
    if record.decision.interval is not None:
        interval = record.decision.interval
        metrics += [
            Metric(f"diff_{record.decision.metric}", interval.estimate, 0, 0),
            Metric(f"diff_{record.decision.metric}_lower", interval.lower, 0, 0),
            Metric(f"diff_{record.decision.metric}_upper", interval.upper, 0, 0),
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
        markdown=record.markdown(),
        description=f"Retrain decision for {record.period}",
    )
    create_table_artifact(
        key="retrain-metrics",
        table=record.metrics_rows(),
        description=f"Holdout metrics of challenger and champion, {record.period}",
    )
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
    run_id: str,
    comparison: Comparison,
    *,
    challenger_label: str,
    champion_label: str | None,
    title: str,
) -> list[str]:
    """ROC, precision-recall, calibration and lift plots of both models as run artifacts.

    Returns the artifact paths (empty when the holdout could not be scored).
    """
    from tasks.decision.plots import comparison_figure

    if comparison.labels is None or comparison.challenger_proba is None:
        return []
    models = {challenger_label: comparison.challenger_proba}
    if comparison.champion_proba is not None and champion_label:
        models[champion_label] = comparison.champion_proba
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / REPORT_DIR
        comparison_figure(comparison.labels, models, folder / "comparison.png", title=title)
        client.log_artifacts(run_id, str(folder), REPORT_DIR)
    return [f"{REPORT_DIR}/comparison.png"]


def write_report_markdown(record: DecisionRecord) -> None:
    """The record's markdown as a run artifact next to the plots (`comparison/report.md`)."""
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.md"
        path.write_text(record.markdown() + "\n")
        client.log_artifact(record.mlflow_run_id, str(path), REPORT_DIR)
