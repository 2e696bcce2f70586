"""Champion health: its score on this month's fresh rows against its score when promoted.

Health is read on the fitness metric, roc_auc, whatever the rule ranks by: it does not move with
the churn rate, the campaign's capacity or its currency. The comparison already scores the
champion on rows it never saw. Against the score it had
when it was promoted (its own holdout then), the change gets an interval (the two holdouts are
independent samples, so the half-widths add in quadrature), and the rule decides the state:
`below-floor` when the champion now misses the rule's floor, `degraded` when the whole interval
of the change is a drop larger than `health_tolerance`, `healthy` otherwise; `unknown` when its
promotion score was not recorded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from tasks.decision.intervals import Interval
from tasks.decision.rule import FITNESS_METRIC, DecisionRule, metric_sign

if TYPE_CHECKING:
    from tasks.decision.compare import Comparison
    from tasks.registry.aliases import ChampionRef

HealthState = Literal["healthy", "degraded", "below-floor", "unknown"]


class PromotionScore(BaseModel):
    """What the champion scored on its own holdout the month it was promoted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: str | None
    estimate: float
    lower: float | None = None
    upper: float | None = None


class ChampionHealth(BaseModel):
    """The champion's health this month, and the numbers behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: HealthState
    metric: str
    version: str
    now: float
    at_promotion: PromotionScore | None
    change: Interval | None  # now - at promotion, raw (not sign-adjusted)
    tolerance: float
    floor: float

    @property
    def needs_a_person(self) -> bool:
        return self.state in ("degraded", "below-floor")

    def text(self) -> str:
        if self.at_promotion is None or self.change is None:
            return (
                f"champion v{self.version} {self.metric} {self.now:.4f} now; its score at "
                f"promotion was not recorded ({self.state})"
            )
        when = f" ({self.at_promotion.period})" if self.at_promotion.period else ""
        return (
            f"champion v{self.version} {self.metric} {self.now:.4f} now vs "
            f"{self.at_promotion.estimate:.4f} at promotion{when}: change {self.change.text()} "
            f"({self.change.confidence:.0%}); {self.state} (tolerance {self.tolerance}, "
            f"floor {self.floor})"
        )


def assess_health(
    now: Interval | float,
    at_promotion: PromotionScore | None,
    rule: DecisionRule,
    *,
    version: str,
) -> ChampionHealth:
    """The champion's state under the rule: floor first, then the change since promotion
    (both on the fitness metric, roc_auc, whatever the rule ranks by)."""
    estimate = now.estimate if isinstance(now, Interval) else float(now)
    sign = metric_sign(FITNESS_METRIC)
    change = _change(now, at_promotion, rule.confidence) if at_promotion else None
    state: HealthState
    if sign * (estimate - rule.floor) < 0:
        state = "below-floor"
    elif change is None:
        state = "unknown"
    else:
        # Sign-adjusted: a drop is negative. Degraded when even the best case is a drop beyond
        # the tolerance (an interval's upper end; the point itself when there is no interval).
        best = max(sign * change.lower, sign * change.upper)
        state = "degraded" if best < -rule.health_tolerance else "healthy"
    return ChampionHealth(
        state=state, metric=FITNESS_METRIC, version=version, now=estimate,
        at_promotion=at_promotion, change=change, tolerance=rule.health_tolerance,
        floor=rule.floor,
    )  # fmt: skip


def _change(now: Interval | float, then: PromotionScore, confidence: float) -> Interval:
    estimate_now = now.estimate if isinstance(now, Interval) else float(now)
    difference = estimate_now - then.estimate
    half_now = (now.upper - now.lower) / 2 if isinstance(now, Interval) else None
    half_then = (
        (then.upper - then.lower) / 2 if then.upper is not None and then.lower is not None else None
    )
    halves = [h for h in (half_now, half_then) if h is not None]
    if not halves:  # point estimates only (method=point): the change is the point
        return Interval(
            estimate=difference, lower=difference, upper=difference, confidence=confidence,
            method="point",
        )  # fmt: skip
    half = math.sqrt(sum(h * h for h in halves))
    return Interval(
        estimate=difference, lower=difference - half, upper=difference + half,
        confidence=confidence, method="independent holdouts, half-widths in quadrature",
    )  # fmt: skip


def champion_health(
    comparison: Comparison,
    champion: ChampionRef | None,
    promoted_at: PromotionScore | None,
    rule: DecisionRule,
) -> ChampionHealth | None:
    """The champion's health from this month's comparison; None without a scored champion."""
    scores = comparison.champion
    if champion is None or not scores or FITNESS_METRIC not in scores:
        return None
    interval = comparison.intervals.champion.get(FITNESS_METRIC) if comparison.intervals else None
    now = interval if interval is not None else scores[FITNESS_METRIC]
    return assess_health(now, promoted_at, rule, version=champion.version)
