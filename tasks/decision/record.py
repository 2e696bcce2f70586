"""The decision record: what was compared, on which data, the numbers, the verdict, why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, computed_field

from tasks.decision.approval import ApprovalOutcome
from tasks.decision.health import ChampionHealth
from tasks.decision.holdout import HoldoutSplit, HoldoutSummary
from tasks.decision.intervals import PairedIntervals
from tasks.decision.rule import (
    CAPACITY_METRICS,
    FITNESS_METRIC,
    DecisionRule,
)
from tasks.decision.verdict import Decision
from tasks.registry.promote import Promotion
from tasks.training.sample import TrainingSample

if TYPE_CHECKING:
    from tasks.data.snapshot import Snapshot
    from tasks.decision.compare import Comparison
    from tasks.registry.aliases import ChampionRef
    from tasks.tracking.runs import Tracking
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

    def metrics_rows(self) -> list[dict[str, float | str | None]]:
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

    def segment_rows(self) -> list[dict[str, float | str | None]]:
        """One row per named segment: size, churn rate, both scores, the change, the verdict."""
        return [
            {
                "segment": s.segment,
                "rows": s.rows,
                "churn_rate": round(s.churn_rate, 4),
                "challenger": None if s.challenger is None else round(s.challenger, 4),
                "champion": None if s.champion is None else round(s.champion, 4),
                "change": None if s.difference is None else s.difference.text(),
                "holm_p": None if s.p_adjusted is None else round(s.p_adjusted, 4),
                "verdict": s.status,
            }
            for s in self.decision.segments
        ]

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

    def _score(self, side: ModelScores) -> str:
        """`metric value` on the holdout, with roc_auc beside a metric that is not roc_auc."""
        metric, nan = self.rule.metric, float("nan")
        shown = f"{metric} {format_score(side.holdout.get(metric, nan), metric)}"
        if metric == "retention_value_at_capacity":
            shown += " per customer"
        if metric != FITNESS_METRIC:
            shown += f", roc_auc {side.holdout.get(FITNESS_METRIC, nan):.4f}"
        return shown

    def campaign_text(self) -> str | None:
        """The list the campaign calls on the holdout and what it is worth on the whole month."""
        rule, ch = self.rule, self.challenger.holdout
        if not CAPACITY_METRICS & set(self.rule.metrics) or "recall_at_capacity" not in ch:
            return None
        campaign = rule.campaign
        share = campaign.share(self.rows)
        parts = [f"calls {share:.1%} of customers ({campaign.describe()})"]
        for label, side in (("challenger", self.challenger), ("champion", self.champion)):
            if side is None or "recall_at_capacity" not in side.holdout:
                continue
            h = side.holdout
            value = h.get("retention_value_at_capacity")
            month = "" if value is None else f", value {value * self.rows:,.0f} on the month"
            parts.append(
                f"{label} finds {h['recall_at_capacity']:.1%} of churners (lift "
                f"{h['lift_at_capacity']:.2f}{month})"
            )
        return "; ".join(parts)

    def text(self) -> str:
        """What a person needs after a run: the verdict, both scores, where to look (the CLI
        prints it; the flow run logs it last)."""
        ch = self.challenger
        nan = float("nan")
        lines = [
            f"churn-retrain {self.period}: {self.verdict.upper()}",
            f"  data         {self.data_source} ({self.rows:,} rows, {self.data_digest})",
            f"  validation   {self.validation}",
            *([f"  drift        {self.drift.splitlines()[0]}"] if self.drift else []),
            f"  challenger   v{ch.version} {ch.algorithm}: holdout {self._score(ch)} "
            f"(CV roc_auc {ch.cv.get(FITNESS_METRIC, nan):.4f}, {self.holdout_rows:,} holdout rows)",
        ]
        if self.champion is None:
            lines.append(
                f"  champion     none before this run ({self.champion_problem})"
                if self.champion_problem
                else "  champion     none before this run"
            )
        else:
            lines.append(
                f"  champion     v{self.champion.version}: holdout {self._score(self.champion)} "
                "on the same rows"
            )
        if (campaign := self.campaign_text()) is not None:
            lines.append(f"  campaign     {campaign}")
        if self.decision.segments:
            judged = [s for s in self.decision.segments if s.status != "too-small"]
            worse = [s for s in judged if s.status == "regression"]
            small = len(self.decision.segments) - len(judged)
            lines.append(
                f"  segments     {len(judged)} judged, {len(worse)} worse"
                + (f", {small} too small to judge" if small else "")
                + (f": {'; '.join(s.text() for s in worse)}" if worse else "")
            )
        if self.holdout_split is not None and self.holdout_split.unseen_rows is not None:
            lines.append(
                f"  holdout      {self.holdout_split.holdout_rows:,} rows the champion never "
                f"trained on ({self.holdout_split.excluded_rows:,} rows excluded)"
            )
        if self.training_sample is not None and self.training_sample.sampled:
            t = self.training_sample
            lines.append(
                f"  training     {t.rows_used:,} of {t.rows_available:,} rows: a stratified "
                f"sample (cap {t.max_rows:,}, seed {t.seed}; --max-train-rows null: all)"
            )
        if self.champion_health is not None:
            lines.append(f"  health       {self.champion_health.text()}")
        if self.approval is not None:
            lines.append(f"  approval     {self.approval.text()}")
        lines += [
            f"  decision     {self.reason}",
            f"  champion now v{self.champion_version_after} (models:/{self.model_name}@champion)"
            if self.champion_version_after
            else "  champion now none",
            f"  took         {sum(self.stage_seconds.values()):.1f} s "
            + " ".join(f"{k}={v:.1f}" for k, v in self.stage_seconds.items()),
            f"  MLflow       run {self.mlflow_run_id} on {self.tracking_uri}",
            f"  look at      {self.mlflow_run_url} (decision.json; local store: `make mlflow-ui`)",
        ]
        return "\n".join(lines)


def format_score(value: float | None, metric: str = "") -> str:
    """A score as the reports show it: 4 decimals, money with 2 and thousands separators."""
    if value is None:
        return ""
    return f"{value:,.2f}" if metric == "retention_value_at_capacity" else f"{value:.4f}"


def build_record(
    *,
    tracking: Tracking,
    snapshot: Snapshot,
    idempotency_key: str,
    split: HoldoutSplit,
    validation: str,
    drift: str | None,
    rule: DecisionRule,
    seed: int,
    run_id: str,
    challenger: Challenger,
    version: str,
    champion: ChampionRef | None,
    comparison: Comparison,
    decision: Decision,
    promotion: Promotion | None,
    training_ids_digest: str,
    report_artifacts: list[str],
    flow_run_id: str | None,
    stage_seconds: dict[str, float],
    champion_health: ChampionHealth | None = None,
    approval: ApprovalOutcome | None = None,
    training_sample: TrainingSample | None = None,
) -> DecisionRecord:
    """The record of one retrain from what its steps returned; `decision` is the settled one."""
    after = decision.champion_after
    return DecisionRecord(
        model_name=tracking.model_name,
        period=snapshot.period,
        data_source=snapshot.source,
        data_digest=snapshot.digest,
        idempotency_key=idempotency_key,
        rows=snapshot.rows,
        train_rows=split.summary.train_rows
        if training_sample is None
        else training_sample.rows_used,
        holdout_rows=comparison.holdout_rows,
        validation=validation,
        seed=seed,
        rule=rule,
        challenger=ModelScores(
            version=version,
            run_id=run_id,
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
        mlflow_run_id=run_id,
        mlflow_run_url=tracking.run_url(run_id),
        champion_url=tracking.version_url(after) if after else None,
        tracking_uri=tracking.tracking_uri,
        flow_run_id=flow_run_id,
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        stage_seconds=stage_seconds,
        notes=[*challenger.notes, *comparison.notes],
        drift=drift,
        intervals=comparison.intervals,
        holdout_split=split.summary,
        training_sample=training_sample,
        champion_problem=comparison.champion_problem,
        champion_health=champion_health,
        promotion=promotion,
        approval=approval,
        training_ids_digest=training_ids_digest,
        report_artifacts=report_artifacts,
    )
