"""The decision record: one value saying what was compared, on which data, and why it was decided."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient
from prefect import task
from pydantic import BaseModel, ConfigDict, Field

from tasks.evaluation import DecisionRule

DECISION_ARTIFACT = "decision.json"


class ModelScores(BaseModel):
    """One side of the comparison."""

    version: str | None = None
    run_id: str | None = None
    algorithm: str | None = None
    holdout: dict[str, float] = Field(default_factory=dict)
    cv: dict[str, float] = Field(default_factory=dict)


class DecisionRecord(BaseModel):
    """Everything needed to audit (and reproduce) one monthly decision."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    period: str
    data_source: str
    data_digest: str
    idempotency_key: str
    rows: int
    train_rows: int
    holdout_rows: int
    validation: str
    seed: int
    rule: DecisionRule
    challenger: ModelScores
    champion: ModelScores | None
    verdict: str
    promoted: bool
    reason: str
    champion_version_after: str | None
    mlflow_run_id: str
    mlflow_run_url: str
    champion_url: str | None
    tracking_uri: str
    flow_run_id: str | None = None
    decided_at: str
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    #: The drift gate's verdict against the champion's training data ("skipped: ..." without one).
    drift: str | None = None

    def tags(self) -> dict[str, str]:
        """The headline of the record as MLflow run tags (searchable in the UI)."""
        rule = self.rule
        return {
            "decision.verdict": self.verdict,
            "decision.promoted": str(self.promoted).lower(),
            "decision.reason": self.reason[:5000],
            "decision.rule": f"{rule.metric} +{rule.min_improvement} floor {rule.floor}",
            "decision.challenger_version": self.challenger.version or "",
            "decision.champion_version_before": (self.champion.version if self.champion else "")
            or "",
            "decision.champion_version_after": self.champion_version_after or "",
            "data.digest": self.data_digest,
            "data.period": self.period,
        }

    def metrics_table(self) -> list[dict[str, float | str | None]]:
        """One row per holdout metric: challenger, champion and the difference."""
        theirs = self.champion.holdout if self.champion else {}
        return [
            {
                "metric": name,
                "challenger": round(value, 4),
                "champion": None if name not in theirs else round(theirs[name], 4),
                "difference": None if name not in theirs else round(value - theirs[name], 4),
            }
            for name, value in self.challenger.holdout.items()
        ]

    def markdown(self) -> str:
        """A short human report (Prefect artifact, CLI)."""
        metric = self.rule.metric
        lines = [
            f"## Retrain {self.period}: **{self.verdict}**",
            "",
            self.reason,
            "",
            "| | version | algorithm | holdout "
            + metric
            + " | holdout brier | CV "
            + metric
            + " |",
            "|---|---|---|---|---|---|",
        ]
        for label, side in (("challenger", self.challenger), ("champion", self.champion)):
            if side is None:
                lines.append(f"| {label} | none | | | | |")
                continue
            lines.append(
                f"| {label} | {side.version or ''} | {side.algorithm or ''} "
                f"| {_fmt(side.holdout.get(metric))} | {_fmt(side.holdout.get('brier'))} "
                f"| {_fmt(side.cv.get(metric))} |"
            )
        lines += [
            "",
            f"Data: `{self.data_source}` ({self.rows:,} rows, digest `{self.data_digest}`), "
            f"holdout {self.holdout_rows:,} rows, seed {self.seed}.",
            f"MLflow run [{self.mlflow_run_id}]({self.mlflow_run_url}) on `{self.tracking_uri}`.",
        ]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@task(name="record-decision", retries=2, retry_delay_seconds=3)
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
    if record.champion is not None:
        metrics += [
            Metric(f"champion_holdout_{k}", v, 0, 0) for k, v in record.champion.holdout.items()
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
    create_markdown_artifact(
        key="retrain-decision",
        markdown=record.markdown(),
        description=f"Retrain decision for {record.period}",
    )
    create_table_artifact(
        key="retrain-metrics",
        table=record.metrics_table(),
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
