"""Holdout metrics and the promotion decision: pure functions, no Prefect, MLflow or disk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Metric = Literal["roc_auc", "pr_auc", "brier", "log_loss", "accuracy", "precision", "recall", "f1"]
#: Metrics where smaller is better; everything else is higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"brier", "log_loss"})

Verdict = Literal[
    "promote-first", "promote", "keep-champion", "reject-below-floor", "already-promoted"
]


def holdout_metrics(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """Ranking, calibration and thresholded metrics of churn probabilities against 0/1 labels."""
    from sklearn import metrics

    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    if y.size == 0 or np.unique(y).size < 2:
        raise ValueError("holdout needs both classes to score a model")
    predicted = (p >= threshold).astype(int)
    return {
        "roc_auc": float(metrics.roc_auc_score(y, p)),
        "pr_auc": float(metrics.average_precision_score(y, p)),
        "brier": float(metrics.brier_score_loss(y, p)),
        "log_loss": float(metrics.log_loss(y, p)),
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
    }


class DecisionRule(BaseModel):
    """When a challenger replaces the champion. Data, not code: it is logged with every decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(
        default="roc_auc", description="Holdout metric the challenger and champion are ranked by."
    )
    min_improvement: float = Field(
        default=0.005,
        ge=0.0,
        le=0.5,
        description="How much better than the champion the challenger must score to replace it.",
    )
    floor: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Absolute bound the challenger must meet on the metric, champion or not "
        "(a minimum, or a maximum for lower-is-better metrics such as brier).",
    )

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


class Decision(BaseModel):
    """The verdict of one comparison and the numbers behind it."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    promote: bool
    reason: str
    metric: str
    challenger_score: float
    champion_score: float | None
    improvement: float | None


def decide(
    rule: DecisionRule,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
) -> Decision:
    """Apply `rule` to the challenger's and (if any) champion's holdout metrics."""
    name = rule.metric
    ours = challenger[name]
    sign = 1.0 if rule.higher_is_better else -1.0
    theirs = None if champion is None else champion[name]
    gain = None if theirs is None else sign * (ours - theirs)

    def _decision(verdict: Verdict, promote: bool, reason: str) -> Decision:
        return Decision(
            verdict=verdict,
            promote=promote,
            reason=reason,
            metric=name,
            challenger_score=ours,
            champion_score=theirs,
            improvement=gain,
        )

    if sign * (ours - rule.floor) < 0:
        bound = "minimum" if rule.higher_is_better else "maximum"
        return _decision(
            "reject-below-floor",
            False,
            f"challenger {name} {ours:.4f} misses the {bound} of {rule.floor:.4f}",
        )
    if theirs is None or gain is None:
        return _decision(
            "promote-first",
            True,
            f"no champion yet; challenger {name} {ours:.4f} meets the floor {rule.floor:.4f}",
        )
    if gain >= rule.min_improvement:
        return _decision(
            "promote",
            True,
            f"challenger {name} {ours:.4f} beats champion {theirs:.4f} by {gain:+.4f} "
            f"(needed {rule.min_improvement:+.4f})",
        )
    return _decision(
        "keep-champion",
        False,
        f"challenger {name} {ours:.4f} vs champion {theirs:.4f}: {gain:+.4f} is short of the "
        f"required {rule.min_improvement:+.4f}",
    )
