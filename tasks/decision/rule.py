"""The decision rule as data: the metric, how a difference is judged, the margin, guardrails, floor."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Metric = Literal["roc_auc", "pr_auc", "brier", "log_loss", "accuracy", "precision", "recall", "f1"]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
#: Metrics where smaller is better; everything else is higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"brier", "log_loss"})

Method = Literal["bootstrap", "delong", "point"]


class Guardrail(BaseModel):
    """A metric the challenger may not worsen, relative to the champion, by more than a tolerance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(description="Holdout metric to protect (recall at the threshold, ...).")
    max_worsening: float = Field(
        ge=0.0,
        le=1.0,
        description="Largest allowed worsening vs the champion (a drop for higher-is-better "
        "metrics, a rise for brier and log_loss), on the point estimates.",
    )


DEFAULT_GUARDRAILS: tuple[Guardrail, ...] = (
    Guardrail(metric="recall", max_worsening=0.05),
    Guardrail(metric="brier", max_worsening=0.01),
)


class DecisionRule(BaseModel):
    """When a challenger replaces the champion. Data, not code: it is logged with every decision.

    Defaults measured by `benchmarks/bench_decision.py` on the real Telco data (200 trials per
    scenario, two seeds): a 95% paired bootstrap interval whose lower end must clear +0.002 AUC
    promoted an equally good retrain in 0-2.5% of trials (margin 0: 2.5-7%, because two
    retrains do differ by tiny real amounts) and a challenger 0.025 AUC better in 82-91% with
    the default guardrails (93-98% without); promoting on the point estimate promoted the
    equally good one 49-56% of the time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(
        default="roc_auc", description="Holdout metric the challenger and champion are ranked by."
    )
    method: Method = Field(
        default="bootstrap",
        description="How the difference is judged: bootstrap (paired, stratified; any metric), "
        "delong (roc_auc only, analytic) or point (the point estimate alone; no interval).",
    )
    min_improvement: float = Field(
        default=0.002,
        ge=0.0,
        le=0.5,
        description="Margin the lower end of the interval of (challenger - champion) must "
        "exceed to promote; with method=point, the margin the point estimate must reach.",
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
        "(checked against the champion only).",
    )
    floor: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Absolute bound the challenger must meet on the metric, champion or not "
        "(a minimum, or a maximum for lower-is-better metrics such as brier).",
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
        description="Champion health: a drop of the champion's metric since its promotion "
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
        if ceiling is not None and self.metric == "roc_auc" and ceiling <= self.floor:
            raise ValueError(f"leakage_ceiling {ceiling} must be above floor {self.floor}")
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics the rule reads: the ranked one, then the guarded ones."""
        names = [self.metric, *(g.metric for g in self.guardrails)]
        return tuple(dict.fromkeys(names))

    def describe(self) -> str:
        """One line, for tags and summaries."""
        if self.method == "point":
            test = f"point estimate >= +{self.min_improvement}"
        else:
            test = f"{self.confidence:.0%} {self.method} lower bound > +{self.min_improvement}"
        guards = ", ".join(f"{g.metric} -{g.max_worsening}" for g in self.guardrails) or "none"
        ceiling = "" if self.leakage_ceiling is None else f", leakage > {self.leakage_ceiling}"
        return f"{self.metric}: {test}; floor {self.floor}; guardrails {guards}{ceiling}"


def metric_sign(metric: str) -> float:
    return -1.0 if metric in LOWER_IS_BETTER else 1.0
