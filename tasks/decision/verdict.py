"""The verdict: one `Decision` from the rule, the scores and everything else that can change it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from tasks.decision.intervals import Interval
from tasks.decision.metrics import EPS
from tasks.decision.rule import FITNESS_METRIC, DecisionRule, Guardrail, metric_sign
from tasks.decision.segments import SegmentResult, worst_regression

Verdict = Literal[
    "promote-first",
    "promote",
    "replace-unusable-champion",
    "replace-below-floor",
    "keep-champion",
    "tie",
    "reject-below-floor",
    "reject-guardrail",
    "segment-regression",
    "reject-leakage-suspected",
    "champion-unusable",
    "insufficient-holdout",
    "conflict",
    "already-promoted",
    "rejected-by-reviewer",
    "approval-timeout",
]
#: Verdicts that move the champion alias (if the promotion is not refused as a conflict).
PROMOTING: frozenset[str] = frozenset(
    {"promote-first", "promote", "replace-unusable-champion", "replace-below-floor"}
)


class GuardrailResult(BaseModel):
    """One guardrail's numbers and verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    challenger: float
    champion: float
    worsening: float  # positive = the challenger is worse
    max_worsening: float
    passed: bool
    interval: Interval | None = None  # of challenger - champion, when computed

    def text(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        return (
            f"{self.metric} {self.challenger:.4f} vs {self.champion:.4f}: worsens by "
            f"{self.worsening:+.4f} (allowed {self.max_worsening:.4f}) {mark}"
        )


def check_guardrails(
    guardrails: Sequence[Guardrail],
    challenger: Mapping[str, float],
    champion: Mapping[str, float],
    differences: Mapping[str, Interval] | None = None,
) -> tuple[GuardrailResult, ...]:
    """Each guardrail against the champion's point estimates."""
    results = []
    for guard in guardrails:
        ours, theirs = challenger[guard.metric], champion[guard.metric]
        worsening = metric_sign(guard.metric) * (theirs - ours)
        results.append(
            GuardrailResult(
                metric=guard.metric,
                challenger=ours,
                champion=theirs,
                worsening=worsening,
                max_worsening=guard.max_worsening,
                passed=worsening <= guard.max_worsening + EPS,
                interval=(differences or {}).get(guard.metric),
            )
        )
    return tuple(results)


class Decision(BaseModel):
    """The verdict of one retrain and the numbers behind it.

    Made by `decide` (or `insufficient_holdout`) from the holdout scores, then possibly changed
    by `hold_if_already_promoted` and, once the promotion step ran, by `settle`: the settled
    value is the run's one verdict. `promote` says whether the verdict calls for moving the
    champion alias; `promoted` whether it moved.
    """

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    promote: bool
    reason: str
    metric: str
    challenger_score: float | None  # None when the holdout could not be scored
    champion_score: float | None
    improvement: float | None  # sign-adjusted: positive = the challenger is better
    interval: Interval | None = None  # of challenger - champion on `metric`, raw
    guardrails: tuple[GuardrailResult, ...] = ()
    #: Each named segment's comparison (empty when the rule names none or it was not reached).
    segments: tuple[SegmentResult, ...] = ()
    #: What the promotion step did, filled in by `settle`: whether the alias moved to the
    #: challenger, and which version holds it afterwards.
    promoted: bool = False
    champion_after: str | None = None
    #: The rule's verdict when a later check replaced it (already promoted, promotion conflict).
    superseded: Verdict | None = None


def decide(
    rule: DecisionRule,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    difference: Interval | None = None,
    guardrail_intervals: Mapping[str, Interval] | None = None,
    champion_problem: str | None = None,
    segments: tuple[SegmentResult, ...] = (),
) -> Decision:
    """Apply `rule` to the challenger's and (if any) champion's holdout numbers.

    Checks, in order: leakage ceiling and fitness floor (roc_auc), unusable or absent champion,
    the interval (or point estimate) against the margin (no margin against a champion below the
    floor: beating it with confidence is enough), the guardrails, then the segments.
    `difference` is the interval of challenger - champion on `rule.metric`; required unless
    `rule.method` is point. `champion_problem` says why a champion that exists could not be
    scored. `segments` are judged already (`judge_segments`).
    """
    name = rule.metric
    ours = challenger[name]
    sign = metric_sign(name)
    theirs = None if champion is None else champion[name]
    gain = None if theirs is None else sign * (ours - theirs)
    measured = champion is not None and all(
        g.metric in challenger and g.metric in champion for g in rule.guardrails
    )
    guards = (
        check_guardrails(rule.guardrails, challenger, champion, guardrail_intervals)
        if measured and champion is not None
        else ()
    )

    def _decision(verdict: Verdict, reason: str) -> Decision:
        return Decision(
            verdict=verdict,
            promote=verdict in PROMOTING,
            reason=reason,
            metric=name,
            challenger_score=ours,
            champion_score=theirs,
            improvement=gain,
            interval=difference,
            guardrails=guards,
            segments=segments,
        )

    fit = challenger[FITNESS_METRIC]
    if rule.leakage_ceiling is not None and fit > rule.leakage_ceiling:
        return _decision(
            "reject-leakage-suspected",
            f"challenger roc_auc {fit:.4f} is above the leakage ceiling "
            f"{rule.leakage_ceiling:.4f}: a feature probably gives the label away; not promoted",
        )
    if fit < rule.floor:
        return _decision(
            "reject-below-floor",
            f"challenger roc_auc {fit:.4f} misses the floor of {rule.floor:.4f}",
        )
    meets = f"challenger roc_auc {fit:.4f} meets the floor {rule.floor:.4f}"
    if champion_problem is not None:
        if rule.replace_unusable_champion:
            return _decision(
                "replace-unusable-champion", f"{champion_problem}; {meets} and replaces it"
            )
        return _decision(
            "champion-unusable",
            f"{champion_problem}; the rule keeps it for a person to act on "
            "(replace_unusable_champion is off)",
        )
    if theirs is None or gain is None or champion is None:
        return _decision("promote-first", f"no champion yet; {meets}")
    unfit = champion.get(FITNESS_METRIC, rule.floor) < rule.floor
    # A champion below the floor is unfit: any confident improvement replaces it.
    margin = 0.0 if unfit else rule.min_improvement
    versus = f"challenger {name} {_score(name, ours)} vs champion {_score(name, theirs)}"
    if rule.method == "point":
        if abs(gain) <= EPS:
            return _decision("tie", f"tie: {versus} are equal; champion stays")
        if gain < margin - EPS or (unfit and gain <= EPS):
            return _decision(
                "keep-champion",
                f"{versus}: {gain:+.4f} is short of the required {margin:+.4f}",
            )
        better = f"{versus}: {gain:+.4f} reaches the required {margin:+.4f}"
    else:
        if difference is None:
            raise ValueError(f"method {rule.method!r} needs the interval of the difference")
        lower, upper = sorted((sign * difference.lower, sign * difference.upper))
        shown = (
            f"{versus}, improvement {gain:+.4f} "
            f"[{lower:+.4f}, {upper:+.4f}] ({difference.confidence:.0%} {rule.method})"
        )
        if lower > margin + EPS:
            better = f"{shown}: lower bound clears the margin {margin:+.4f}"
        elif upper < -EPS:
            return _decision("keep-champion", f"{shown}: the champion is better; champion stays")
        elif lower <= EPS:
            return _decision(
                "tie",
                f"tie: {shown} includes no improvement; champion stays",
            )
        else:
            return _decision(
                "keep-champion",
                f"{shown}: better, but the lower bound misses the margin {margin:+.4f}",
            )
    if unfit:
        better = (
            f"champion roc_auc {champion[FITNESS_METRIC]:.4f} is below the floor "
            f"{rule.floor:.4f}; {better}"
        )
    if rule.guardrails and not measured:
        raise ValueError("the guardrails need their metrics for both models")
    failed = [g for g in guards if not g.passed]
    if failed:
        return _decision(
            "reject-guardrail",
            f"{better}, but guardrails failed: " + "; ".join(g.text() for g in failed),
        )
    worse = worst_regression(segments)
    if worse is not None:
        others = sum(s.status == "regression" for s in segments) - 1
        more = f" (and {others} more segment{'s' if others > 1 else ''})" if others else ""
        return _decision(
            "segment-regression",
            f"{better}, but the challenger is worse for {worse.text()}{more}",
        )
    return _decision("replace-below-floor" if unfit else "promote", better)


def _score(metric: str, value: float) -> str:
    return f"{value:,.2f}" if metric == "retention_value_at_capacity" else f"{value:.4f}"


def holdout_shortfall(
    rule: DecisionRule, *, rows: int, positives: int, with_champion: bool
) -> str | None:
    """Why a holdout cannot carry the decision (too few rows, one class), or None if it can."""
    if positives == 0 or positives == rows:
        return f"the {rows}-row holdout has one class only; no model can be ranked on it"
    if with_champion and rows < rule.min_holdout_rows:
        return (
            f"only {rows} holdout rows the champion never trained on; the rule needs "
            f"{rule.min_holdout_rows} to compare"
        )
    return None


def insufficient_holdout(rule: DecisionRule, problem: str) -> Decision:
    """The decision when the holdout cannot carry a comparison: nothing is promoted."""
    return Decision(
        verdict="insufficient-holdout",
        promote=False,
        reason=f"{problem}; champion stays",
        metric=rule.metric,
        challenger_score=None,
        champion_score=None,
        improvement=None,
    )


def hold_if_already_promoted(decision: Decision, promoted_version: str | None) -> Decision:
    """Turn a promotion into `already-promoted` when the period already promoted a version."""
    if not decision.promote or promoted_version is None:
        return decision
    return decision.model_copy(
        update={
            "verdict": "already-promoted",
            "promote": False,
            "reason": f"version {promoted_version} was already promoted for this period "
            f"(would have been: {decision.reason})",
            "superseded": decision.verdict,
        }
    )


class PromotionOutcome(Protocol):
    """What the registry's promotion step reports (`tasks.registry.promote.Promotion`)."""

    @property
    def promoted(self) -> bool: ...
    @property
    def conflict(self) -> bool: ...
    @property
    def champion_after(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


def settle(
    decision: Decision, promotion: PromotionOutcome | None, *, champion_before: str | None
) -> Decision:
    """The final decision once the promotion step ran (`promotion` None: nothing was attempted).

    The comparison's own verdict, with whether the alias moved and who holds it now; unless the
    promotion was refused: then `conflict`, and the champion is whoever holds the alias.
    """
    if promotion is None:
        return decision.model_copy(update={"promoted": False, "champion_after": champion_before})
    if promotion.conflict:
        return decision.model_copy(
            update={
                "verdict": "conflict",
                "promote": False,
                "promoted": False,
                "reason": f"{promotion.reason} (the comparison said: {decision.reason})",
                "champion_after": promotion.champion_after,
                "superseded": decision.verdict,
            }
        )
    return decision.model_copy(
        update={"promoted": promotion.promoted, "champion_after": promotion.champion_after}
    )
