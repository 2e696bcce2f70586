"""The decision record: what was compared, on which data, the numbers, the verdict, why."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, computed_field

from tasks.decision.approval import ApprovalOutcome
from tasks.decision.health import ChampionHealth
from tasks.decision.holdout import HoldoutSummary
from tasks.decision.intervals import PairedIntervals
from tasks.decision.rule import (
    DecisionRule,
)
from tasks.decision.verdict import Decision, settle
from tasks.registry.promotion import Promotion
from tasks.runtime.code_version import code_version
from tasks.training.sample import TrainingSample

if TYPE_CHECKING:
    from tasks.decision.compare import Comparison
    from tasks.gate.admit import Admitted
    from tasks.registry.aliases import ChampionRef
    from tasks.tracking.runs import RunRef
    from tasks.training.sample import MonthSplit
    from tasks.training.train import Challenger


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
    #: The one verdict: the rule's, after every check that can change it (the statistics behind
    #: it, whether the alias moved, who is champion now). `verdict`, `promoted`, `reason` and
    #: `champion_version_after` read it (and are written to decision.json from it).
    decision: Decision
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
    intervals: PairedIntervals | None = None
    holdout_split: HoldoutSummary | None = None
    #: Which training rows the challenger used: all of the split, or a sample over the cap.
    training_sample: TrainingSample | None = None
    champion_problem: str | None = None
    champion_health: ChampionHealth | None = None
    promotion: Promotion | None = None
    #: Who approved or rejected the promotion and when (None: approval was not required, or
    #: the comparison did not call for a promotion).
    approval: ApprovalOutcome | None = None
    training_ids_digest: str | None = None
    report_artifacts: list[str] = Field(default_factory=list)
    #: The code that decided (`tasks/runtime/code_version.py`); None in records made before.
    code_version: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> str:
        return self.decision.verdict

    @computed_field  # type: ignore[prop-decorator]
    @property
    def promoted(self) -> bool:
        return self.decision.promoted

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reason(self) -> str:
        return self.decision.reason

    @computed_field  # type: ignore[prop-decorator]
    @property
    def champion_version_after(self) -> str | None:
        return self.decision.champion_after

    def tags(self) -> dict[str, str]:
        """The headline of the record as MLflow run tags (searchable in the UI)."""
        rule = self.rule
        return {
            "decision.verdict": self.verdict,
            "decision.metric": self.rule.metric,
            "decision.promoted": str(self.promoted).lower(),
            "decision.reason": self.reason[:5000],
            "decision.rule": rule.describe()[:5000],
            "decision.challenger_version": self.challenger.version or "",
            "decision.champion_version_before": (self.champion.version if self.champion else "")
            or "",
            "decision.champion_version_after": self.champion_version_after or "",
            "data.digest": self.data_digest,
            "data.period": self.period,
            **({"champion.health": self.champion_health.state} if self.champion_health else {}),
            **({"decision.approval": self.approval.text()[:5000]} if self.approval else {}),
            **self._statistics_tags(),
        }

    def _statistics_tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        if self.decision.interval is not None:
            tags["decision.difference"] = (
                f"{self.decision.metric} {self.decision.interval.text()} "
                f"({self.decision.interval.confidence:.0%}, {self.decision.interval.method})"
            )
        if self.decision.guardrails:
            tags["decision.guardrails"] = "; ".join(g.text() for g in self.decision.guardrails)
        if self.decision.segments:
            tags["decision.segments"] = "; ".join(s.text() for s in self.decision.segments)[:5000]
        if self.holdout_split is not None:
            tags["holdout.rows"] = str(self.holdout_split.holdout_rows)
            tags["holdout.excluded_rows"] = str(self.holdout_split.excluded_rows)
            tags["holdout.note"] = self.holdout_split.note[:5000]
        if self.champion_problem:
            tags["decision.champion_problem"] = self.champion_problem[:5000]
        if self.training_sample is not None:
            tags.update(self.training_sample.tags())
        return tags


def format_score(value: float | None, metric: str = "") -> str:
    """A score as the reports show it: 4 decimals, money with 2 and thousands separators."""
    if value is None:
        return ""
    return f"{value:,.2f}" if metric == "retention_value_at_capacity" else f"{value:.4f}"


@dataclass(frozen=True)
class Outcome:
    """What a retrain did after the comparison: the settled decision, the promotion (when one was
    attempted), the approval, the champion's health, the report's artifacts, the training IDs'
    digest, the challenger's registered version, and the time each stage took."""

    decision: Decision
    promotion: Promotion | None
    approval: ApprovalOutcome | None
    health: ChampionHealth | None
    artifacts: list[str]
    training_ids_digest: str
    version: str
    stage_seconds: dict[str, float]

    def settled(
        self, decision: Decision, promotion: Promotion | None, before: str | None
    ) -> Outcome:
        """This outcome with `promotion` (None: none attempted) and `decision` settled by it."""
        settled = settle(decision, promotion, champion_before=before)
        return replace(self, decision=settled, promotion=promotion)


def build_record(
    run: RunRef,
    admitted: Admitted,
    month: MonthSplit,
    challenger: Challenger,
    champion: ChampionRef | None,
    comparison: Comparison,
    outcome: Outcome,
) -> DecisionRecord:
    """The record of one retrain from what its steps returned; `outcome.decision` is settled."""
    snapshot, decision, tracking = admitted.snapshot, outcome.decision, run.tracking
    after = decision.champion_after
    return DecisionRecord(
        model_name=tracking.model_name,
        period=snapshot.period,
        data_source=snapshot.source,
        data_digest=snapshot.digest,
        code_version=code_version(),
        idempotency_key=run.key,
        rows=snapshot.rows,
        train_rows=month.training.summary.rows_used,
        holdout_rows=comparison.holdout_rows,
        validation=admitted.validation.summary(),
        seed=run.seed,
        rule=run.rule,
        challenger=ModelScores(
            version=outcome.version,
            run_id=run.run_id,
            algorithm=challenger.algorithm,
            holdout=comparison.challenger,
            cv=challenger.cv_metrics,
        ),
        champion=None
        if champion is None
        else ModelScores(
            version=champion.version, run_id=champion.run_id, holdout=comparison.champion or {}
        ),
        decision=decision,
        mlflow_run_id=run.run_id,
        mlflow_run_url=run.run_url,
        champion_url=tracking.version_url(after) if after else None,
        tracking_uri=tracking.tracking_uri,
        flow_run_id=run.flow_run_id,
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        stage_seconds=outcome.stage_seconds,
        notes=[*challenger.notes, *comparison.notes],
        drift=admitted.drift.summary(),
        intervals=comparison.intervals,
        holdout_split=month.holdout_summary,
        training_sample=month.training.summary,
        champion_problem=comparison.champion_problem,
        champion_health=outcome.health,
        promotion=outcome.promotion,
        approval=outcome.approval,
        training_ids_digest=outcome.training_ids_digest,
        report_artifacts=outcome.artifacts,
    )
