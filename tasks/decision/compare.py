"""Score the challenger and the champion on the same holdout and decide between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from tasks.data.schema import POSITIVE_LABEL, TARGET
from tasks.decision.campaign import customer_values
from tasks.decision.intervals import (
    Interval,
    PairedIntervals,
    SegmentDraws,
    bootstrap_intervals,
    delong_difference,
    paired_bootstrap,
)
from tasks.decision.metrics import ListTerms, available_metrics, holdout_metrics
from tasks.decision.rule import METRICS, DecisionRule
from tasks.decision.segments import SegmentResult, judge_segments, judgeable, segment_draws
from tasks.decision.verdict import Decision, decide, holdout_shortfall, insufficient_holdout
from tasks.steps import step
from tasks.training.model import PROBABILITY_COLUMN, ChurnModel


class Evaluation(BaseModel):
    """Both models' holdout metrics, their intervals and the decision taken on them."""

    model_config = ConfigDict(frozen=True)

    challenger: dict[str, float]
    champion: dict[str, float] | None
    intervals: PairedIntervals | None
    decision: Decision


def evaluate(
    rule: DecisionRule,
    y_true: npt.ArrayLike,
    challenger_proba: npt.ArrayLike,
    champion_proba: npt.ArrayLike | None,
    *,
    thresholds: tuple[float, float] = (0.5, 0.5),
    seed: int = 0,
    champion_problem: str | None = None,
    report_metrics: Sequence[str] = METRICS,
    terms: ListTerms | None = None,
    segments: SegmentDraws | None = None,
    small_segments: tuple[SegmentResult, ...] = (),
) -> Evaluation:
    """Score both models on the same holdout, compute the intervals the rule needs, decide.

    `report_metrics` are bootstrapped too (for the comparison report); pass () to compute only
    what the rule needs. `terms` is the campaign on this holdout (default: the rule's capacity
    of these rows, without customer values); `segments` the segments to compare, with the
    ones too small to judge in `small_segments`. Deterministic in `seed`. A holdout that cannot
    carry the decision (one class only; with a champion, fewer than `rule.min_holdout_rows`
    rows) gives the verdict insufficient-holdout, with no metrics.
    """
    y = np.asarray(y_true).astype(np.int64)
    shortfall = holdout_shortfall(
        rule, rows=y.size, positives=int(y.sum()), with_champion=champion_proba is not None
    )
    if shortfall is not None:
        return Evaluation(
            challenger={},
            champion=None,
            intervals=None,
            decision=insufficient_holdout(rule, shortfall),
        )
    terms = terms or ListTerms(contacts=rule.campaign.contacts(y.size))
    ours = holdout_metrics(y, challenger_proba, threshold=thresholds[0], terms=terms)
    theirs = (
        None
        if champion_proba is None
        else holdout_metrics(y, champion_proba, threshold=thresholds[1], terms=terms)
    )
    missing = [m for m in rule.metrics if m not in ours]
    if missing:
        raise ValueError(f"the rule needs {', '.join(missing)}: give each customer's value")
    report = available_metrics(report_metrics, terms)
    needed = rule.metrics if rule.method == "bootstrap" and theirs is not None else ()
    wanted = tuple(dict.fromkeys([*report, *needed]))
    compared = None
    if segments is not None and champion_proba is not None:
        compared, unjudged = judgeable(segments, y)
        small_segments = (*small_segments, *unjudged)
    intervals: PairedIntervals | None = None
    if (wanted or compared) and champion_proba is not None:
        intervals = paired_bootstrap(
            y,
            challenger_proba,
            champion_proba,
            metrics=wanted,
            thresholds=thresholds,
            confidence=rule.confidence,
            n_resamples=rule.n_bootstrap,
            seed=seed,
            terms=terms,
            segments=compared,
        )
    elif report:
        alone = bootstrap_intervals(
            y,
            challenger_proba,
            metrics=report,
            threshold=thresholds[0],
            confidence=rule.confidence,
            n_resamples=rule.n_bootstrap,
            seed=seed,
            terms=terms,
        )
        intervals = PairedIntervals(challenger=alone, champion={}, difference={})
    difference: Interval | None = None
    if champion_proba is not None and rule.method == "delong":
        difference = delong_difference(
            y, challenger_proba, champion_proba, confidence=rule.confidence
        )
    elif intervals is not None and rule.method == "bootstrap":
        difference = intervals.difference.get(rule.metric)
    judged: tuple[SegmentResult, ...] = ()
    if compared is not None and intervals is not None and intervals.segments:
        judged = judge_segments(
            compared, intervals.segments, y, small_segments, confidence=rule.confidence
        )
    elif champion_proba is not None:
        judged = small_segments
    decision = decide(
        rule,
        ours,
        theirs,
        difference=difference,
        guardrail_intervals=None if intervals is None else intervals.difference,
        champion_problem=champion_problem,
        segments=judged,
    )
    return Evaluation(challenger=ours, champion=theirs, intervals=intervals, decision=decision)


def campaign_terms(
    rule: DecisionRule, holdout: pd.DataFrame, *, population: int | None = None
) -> tuple[ListTerms, str | None]:
    """The campaign on `holdout`: its list size (the rule's share of the month's `population`
    customers), each customer's gain if kept; and a note when some values were missing."""
    campaign = rule.campaign
    values, missing = customer_values(campaign.customer_value, holdout)
    terms = ListTerms(
        contacts=campaign.contacts(len(holdout), population),
        gains=values * campaign.save_rate,
        contact_cost=campaign.contact_cost,
    )
    note = (
        f"{missing} holdout row(s) have no value for {campaign.customer_value!r}: counted as 0"
        if missing
        else None
    )
    return terms, note


@dataclass(frozen=True)
class Comparison:
    """Both models' holdout metrics and probabilities, their intervals and the decision."""

    holdout_rows: int
    challenger: dict[str, float]
    champion: dict[str, float] | None
    decision: Decision
    intervals: PairedIntervals | None = None
    champion_problem: str | None = None
    labels: npt.NDArray[np.int64] | None = None  # holdout churn as 0/1, for the report plots
    challenger_proba: npt.NDArray[np.float64] | None = None
    champion_proba: npt.NDArray[np.float64] | None = None
    terms: ListTerms | None = None  # the campaign on the holdout, for the capacity curve
    notes: tuple[str, ...] = ()


def predict_churn(model: Any, holdout: pd.DataFrame) -> tuple[npt.NDArray[np.float64], float]:
    """Churn probabilities of a ChurnModel or a loaded pyfunc on raw rows, and its threshold."""
    rows = holdout.drop(columns=[TARGET])
    if isinstance(model, ChurnModel):
        return model.predict_proba(rows), model.threshold
    # Through pyfunc's predict, so the champion checks the raw rows as any MLflow client's would.
    proba = np.asarray(model.predict(rows)[PROBABILITY_COLUMN].to_numpy(), dtype=float)
    return proba, float(getattr(model.unwrap_python_model(), "threshold", 0.5))


class LoadedModel(Protocol):
    """The champion as loaded from the registry (`tasks.registry.champion.LoadedChampion`)."""

    @property
    def model(self) -> Any | None: ...
    @property
    def problem(self) -> str | None: ...


@step("compare-with-champion")
def compare_with_champion(
    challenger: ChurnModel,
    champion: LoadedModel | None,
    holdout: pd.DataFrame,
    rule: DecisionRule,
    *,
    seed: int = 0,
    champion_problem: str | None = None,
    population: int | None = None,
) -> Comparison:
    """Score both on the holdout neither trained on; decide by `rule` (seeded, so repeatable).

    `population` is the month's number of customers, which a campaign capacity given as a
    number of customers is a share of (the holdout is judged at the same share).

    `champion` is None when there is none; `champion_problem` then says why, if one existed.
    A champion that will not load, or raises while scoring, is a named outcome
    (`champion_problem`), not a crash.
    """
    if champion is not None:
        champion_problem = champion_problem or champion.problem
    model = None if champion is None else champion.model
    labels = (holdout[TARGET] == POSITIVE_LABEL).to_numpy().astype(np.int64)
    shortfall = holdout_shortfall(
        rule,
        rows=len(holdout),
        positives=int(labels.sum()),
        with_champion=model is not None,
    )
    if shortfall is not None:
        return Comparison(
            holdout_rows=len(holdout),
            challenger={},
            champion=None,
            decision=insufficient_holdout(rule, shortfall),
            champion_problem=champion_problem,
        )
    ours, our_threshold = predict_churn(challenger, holdout)
    theirs: npt.NDArray[np.float64] | None = None
    their_threshold = 0.5
    if model is not None:
        try:
            theirs, their_threshold = predict_churn(model, holdout)
            if theirs.shape != ours.shape or not np.isfinite(theirs).all():
                raise ValueError(f"returned {theirs.size} probabilities, not all finite")
        except Exception as exc:
            text = str(exc).strip().splitlines()
            champion_problem = (
                f"the champion cannot score this snapshot: {type(exc).__name__}: "
                f"{text[0] if text else ''}"
            )[:300]
            theirs = None
    terms, note = campaign_terms(rule, holdout, population=population)
    draws, small = segment_draws(holdout, labels, rule.segments)
    evaluation = evaluate(
        rule,
        labels,
        ours,
        theirs,
        thresholds=(our_threshold, their_threshold),
        seed=seed,
        champion_problem=champion_problem,
        terms=terms,
        segments=draws,
        small_segments=small,
    )
    return Comparison(
        holdout_rows=len(holdout),
        challenger=evaluation.challenger,
        champion=evaluation.champion,
        decision=evaluation.decision,
        intervals=evaluation.intervals,
        champion_problem=champion_problem,
        labels=labels,
        challenger_proba=ours,
        champion_proba=theirs,
        terms=terms,
        notes=() if note is None else (note,),
    )
