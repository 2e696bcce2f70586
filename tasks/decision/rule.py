"""The decision rule as data: the metric, how a difference is judged, the margin, guardrails,
the campaign the ranking serves, the segments it may not hurt, and the fitness floor."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.data.schema import CATEGORICAL_DOMAINS, INTEGER_COLUMNS, NUMERIC_COLUMNS
from tasks.decision.campaign import Campaign

Metric = Literal[
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "recall_at_capacity",
    "precision_at_capacity",
    "f1_at_capacity",
    "lift_at_capacity",
    "retention_value_at_capacity",
]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
#: Metrics where smaller is better; everything else is higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"brier", "log_loss"})
#: Metrics of the list the retention team calls: its top `capacity` by churn probability.
CAPACITY_METRICS: frozenset[str] = frozenset(m for m in METRICS if m.endswith("_at_capacity"))
#: Threshold metrics a guardrail judges where the business acts: at the campaign's capacity.
AT_CAPACITY: dict[str, str] = {m: f"{m}_at_capacity" for m in ("recall", "precision", "f1")}
#: Metrics that are not shares in [0, 1]: their margins and tolerances may exceed 1.
UNBOUNDED: frozenset[str] = frozenset(
    {"log_loss", "lift_at_capacity", "retention_value_at_capacity"}
)
#: What "fit" means whatever the rule ranks by: the floor, the leakage ceiling and the champion's
#: health read ROC-AUC, which does not depend on the churn rate, the capacity or the currency.
FITNESS_METRIC = "roc_auc"

Method = Literal["bootstrap", "delong", "point"]


def _check_scale(metric: str, value: float, what: str, most: float = 1.0) -> None:
    """A margin or tolerance on a share (roc_auc, recall, ...) is at most `most`."""
    if metric not in UNBOUNDED and value > most:
        raise ValueError(
            f"{what} {value:g} is more than {metric} can sensibly change (at most {most:g})"
        )


class Guardrail(BaseModel):
    """A metric the challenger may not worsen, relative to the champion, by more than a tolerance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(
        description="Holdout metric to protect. recall, precision and f1 are judged at the "
        "campaign's capacity (recall_at_capacity, ...), where the business acts, not at a "
        "fixed probability threshold."
    )
    max_worsening: float = Field(
        ge=0.0,
        le=1e9,
        description="Largest allowed worsening vs the champion (a drop for higher-is-better "
        "metrics, a rise for brier and log_loss), on the point estimates, in the metric's units.",
    )

    @field_validator("metric", mode="before")
    @classmethod
    def _at_capacity(cls, value: object) -> object:
        return AT_CAPACITY.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _in_scale(self) -> Guardrail:
        _check_scale(self.metric, self.max_worsening, "max_worsening")
        return self


DEFAULT_GUARDRAILS: tuple[Guardrail, ...] = (
    Guardrail(metric="recall_at_capacity", max_worsening=0.05),
    Guardrail(metric="brier", max_worsening=0.01),
)


class SegmentGuard(BaseModel):
    """Segments the challenger may not get worse in while the average improves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[str, ...] = Field(
        default=(),
        description="Columns whose segments are judged: a categorical column (a segment per "
        "value: Contract, InternetService, SeniorCitizen, ...) or a numeric column with band "
        "edges after a colon, separated by slashes (`tenure:12/24/48`). Empty: no segment check.",
    )
    metric: Metric = Field(
        default="roc_auc",
        description="Metric compared within each segment (the `*_at_capacity` ones: the "
        "month's list, read within the segment).",
    )
    tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=1e9,
        description="Largest worsening in a segment that is accepted: the challenger is "
        "refused only when a segment is confidently worse by more than this (Holm's "
        "correction across segments).",
    )
    min_rows: int = Field(
        default=200,
        ge=10,
        le=10_000_000,
        description="Fewest holdout rows a segment needs to be judged; smaller ones are "
        "reported as too small, not passed.",
    )
    min_churners: int = Field(
        default=20,
        ge=2,
        le=1_000_000,
        description="Fewest churners (and non-churners) a segment needs to be judged.",
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return (
            tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, str)
            else value
        )

    @field_validator("columns")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for spec in value:
            parse_segment_column(spec)
        if len(set(value)) != len(value):
            raise ValueError("a segment column is named twice")
        return value

    @model_validator(mode="after")
    def _in_scale(self) -> SegmentGuard:
        _check_scale(self.metric, self.tolerance, "segments.tolerance")
        return self


class DecisionRule(BaseModel):
    """When a challenger replaces the champion. Data, not code: it is logged with every decision.

    Defaults measured by `benchmarks/bench_decision.py` and `benchmarks/bench_months.py` on the
    real Telco data and on generated months (docs/decision-rule.md has the tables).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(
        default="roc_auc",
        description="Holdout metric the challenger and champion are ranked by: roc_auc, or "
        "what the campaign gets from the list it calls (recall_at_capacity, "
        "lift_at_capacity, retention_value_at_capacity: value per scored customer).",
    )
    method: Method = Field(
        default="bootstrap",
        description="How the difference is judged: bootstrap (paired, stratified; any metric), "
        "delong (roc_auc only, analytic) or point (the point estimate alone; no interval).",
    )
    min_improvement: float = Field(
        default=0.002,
        ge=0.0,
        le=1e9,
        description="Margin the lower end of the interval of (challenger - champion) must "
        "exceed to promote, in the metric's units; with method=point, the margin the point "
        "estimate must reach.",
    )
    confidence: float = Field(
        default=0.95,
        ge=0.5,
        le=0.999,
        description="Two-sided confidence of the interval (its lower end is the one-sided "
        "bound at (1 + confidence) / 2).",
    )
    n_bootstrap: int = Field(
        default=2000, ge=100, le=100_000, description="Bootstrap resamples of the holdout."
    )
    guardrails: tuple[Guardrail, ...] = Field(
        default=DEFAULT_GUARDRAILS,
        description="Metrics the challenger may not worsen by more than a tolerance "
        "(checked against the champion only; recall, precision and f1 at the campaign's "
        "capacity).",
    )
    campaign: Campaign = Field(
        default_factory=Campaign,
        description="The retention campaign the ranking serves: its capacity, save rate, "
        "contact cost and the value of a kept customer.",
    )
    segments: SegmentGuard = Field(
        default_factory=SegmentGuard,
        description="Segments (Contract, InternetService, tenure bands, ...) the challenger "
        "may not get worse in.",
    )
    floor: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Fitness floor: the lowest holdout roc_auc a model may have, whatever "
        "the rule ranks by. A challenger below it is rejected; a champion below it is "
        "replaced by a challenger that beats it with confidence (no margin needed).",
    )
    leakage_ceiling: float | None = Field(
        default=0.90,
        ge=0.5,
        le=1.0,
        description="A challenger holdout roc_auc above this is rejected as suspected leakage "
        "(Telco models reach about 0.85; far above means a feature gives the label away). "
        "Empty: no check.",
    )
    min_holdout_rows: int = Field(
        default=100,
        ge=10,
        le=1_000_000,
        description="Fewest holdout rows a comparison with the champion may rest on.",
    )
    holdout_half_width: float | None = Field(
        default=0.004,
        ge=0.0002,
        le=0.1,
        description="Interval half-width the comparison needs: the holdout is capped at the "
        "rows that give it, sized for roc_auc at its widest (AUC 0.5) as if the two models' "
        "errors were independent, so the paired interval the rule reads is narrower still "
        "(about 205,000 rows at 26.5% churn and 95%). Empty: no cap.",
    )
    health_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=0.5,
        description="Champion health: a drop of the champion's roc_auc since its promotion "
        "that is confidently larger than this (the whole interval of the change beyond it) "
        "makes it `degraded`, which alerts; below `floor` it is `below-floor`.",
    )
    replace_unusable_champion: bool = Field(
        default=True,
        description="If the champion cannot be loaded or cannot score the snapshot, promote a "
        "challenger that passes the floor and the leakage check (off: keep it, verdict "
        "champion-unusable, for a person to act on).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DecisionRule:
        if self.method == "delong" and self.metric != "roc_auc":
            raise ValueError("method 'delong' compares roc_auc only")
        ceiling = self.leakage_ceiling
        if ceiling is not None and ceiling <= self.floor:
            raise ValueError(f"leakage_ceiling {ceiling} must be above floor {self.floor}")
        _check_scale(self.metric, self.min_improvement, "min_improvement", most=0.5)
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics the rule reads: the ranked one, then the guarded ones, then fitness."""
        names = [self.metric, *(g.metric for g in self.guardrails), FITNESS_METRIC]
        return tuple(dict.fromkeys(names))

    def describe(self) -> str:
        """One line, for tags and summaries."""
        if self.method == "point":
            test = f"point estimate >= +{self.min_improvement:g}"
        else:
            test = f"{self.confidence:.0%} {self.method} lower bound > +{self.min_improvement:g}"
        guards = (
            ", ".join(
                f"{g.metric} {'+' if g.metric in LOWER_IS_BETTER else '-'}{g.max_worsening:g}"
                for g in self.guardrails
            )
            or "none"
        )
        ceiling = "" if self.leakage_ceiling is None else f", leakage > {self.leakage_ceiling}"
        capacity = (
            f"; campaign {self.campaign.describe()}"
            if CAPACITY_METRICS & {self.metric, *(g.metric for g in self.guardrails)}
            else ""
        )
        segments = ""
        if self.segments.columns:
            s = self.segments
            segments = (
                f"; segments {', '.join(s.columns)} ({s.metric} -{s.tolerance:g}, Holm, "
                f">= {s.min_rows} rows)"
            )
        return (
            f"{self.metric}: {test}; roc_auc floor {self.floor}{ceiling}; guardrails {guards}"
            f"{capacity}{segments}"
        )


def parse_segment_column(spec: str) -> tuple[str, tuple[float, ...]]:
    """`Contract` -> ("Contract", ()); `tenure:12/24/48` -> ("tenure", (12.0, 24.0, 48.0))."""
    column, _, edges = spec.partition(":")
    column = column.strip()
    if column not in CATEGORICAL_DOMAINS and column not in NUMERIC_COLUMNS:
        known = ", ".join([*CATEGORICAL_DOMAINS, *NUMERIC_COLUMNS])
        raise ValueError(f"segment column {column!r} is not a snapshot column ({known})")
    if not edges:
        if column in NUMERIC_COLUMNS and column not in INTEGER_COLUMNS:
            raise ValueError(
                f"segment column {column!r} is numeric: give band edges, e.g. {column}:30/70"
            )
        if column == "tenure":
            raise ValueError("segment column 'tenure' needs band edges, e.g. tenure:12/24/48")
        return column, ()
    if column not in NUMERIC_COLUMNS:
        raise ValueError(f"segment column {column!r} is categorical: band edges apply to numbers")
    try:
        cuts = tuple(float(e) for e in edges.split("/"))
    except ValueError:
        raise ValueError(f"segment bands {spec!r}: edges are numbers separated by /") from None
    if list(cuts) != sorted(set(cuts)):
        raise ValueError(f"segment bands {spec!r}: edges must increase")
    return column, cuts


def metric_sign(metric: str) -> float:
    return -1.0 if metric in LOWER_IS_BETTER else 1.0
