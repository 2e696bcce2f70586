"""Properties of the fair holdout split and of the decision, over generated inputs (Hypothesis).

Pure functions only: no server, no disk, no training. Each property runs a bounded number of
examples with a fixed derandomised seed, so a run is repeatable and fast.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tasks.data.schema import ID_COLUMN, TARGET
from tasks.decision.compare import Evaluation, evaluate
from tasks.decision.holdout import TrainingIds, hash_ids, split_fair_holdout
from tasks.decision.intervals import Interval, SegmentDraws
from tasks.decision.metrics import EPS, ListTerms
from tasks.decision.rule import FITNESS_METRIC, METRICS, DecisionRule, Guardrail, metric_sign
from tasks.decision.verdict import PROMOTING, Decision, Verdict, decide
from tasks.errors import ChurnRetrainError

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VERDICTS: frozenset[str] = frozenset(Verdict.__args__)  # type: ignore[attr-defined]
REJECTS = frozenset({"reject-below-floor", "reject-leakage-suspected", "insufficient-holdout"})
seeds = st.integers(min_value=0, max_value=2**31 - 1)
FRACTIONS = (0.05, 0.1, 0.2, 0.25, 0.5)  # usual holdout fractions


# --- the fair holdout split ---------------------------------------------------------------


@st.composite
def months(
    draw: st.DrawFn, bounds: tuple[float, float]
) -> tuple[pd.DataFrame, float, TrainingIds | None, np.ndarray | None]:
    """A month (IDs, labels, a row key), and the champion's training customers: no champion,
    IDs unknown, or known with none, some or all of the month's customers (plus others)."""
    rows = draw(st.integers(min_value=0, max_value=400))
    fraction = draw(st.one_of(st.floats(*bounds), st.sampled_from(FRACTIONS)))
    positives = draw(
        st.one_of(
            st.integers(min_value=0, max_value=rows),
            st.sampled_from([0, 1, 2, rows - 2, rows - 1, rows]).map(
                lambda k: min(max(k, 0), rows)
            ),
        )
    )
    order = np.random.default_rng(draw(seeds)).permutation(rows)
    labels = np.where(order < positives, "Yes", "No")
    frame = pd.DataFrame(
        {ID_COLUMN: [f"{i:04d}-C" for i in range(rows)], TARGET: labels, "row": range(rows)}
    )
    overlap = draw(st.sampled_from(["no champion", "unknown", "none", "some", "all"]))
    if overlap == "no champion":
        return frame, fraction, None, None
    if overlap == "unknown":
        gone = TrainingIds(None, None, problem="the champion's training IDs are gone")
        return frame, fraction, gone, None
    if overlap == "none":
        seen = np.zeros(rows, dtype=bool)
    elif overlap == "all":
        seen = np.ones(rows, dtype=bool)
    else:
        # Any number of unseen rows, often at the edges of a usual request (requested + 1 ...).
        near = [max(1, round(fraction * rows)) + d for d in (-1, 0, 1, 2)]
        unseen = draw(
            st.one_of(
                st.integers(min_value=0, max_value=rows),
                st.sampled_from(near).map(lambda u: min(max(u, 0), rows)),
            )
        )
        seen = np.random.default_rng(draw(seeds)).permutation(rows) >= unseen
    others = [f"{i:04d}-GONE" for i in range(draw(st.integers(0, 20)))]  # churned since
    ids = [*frame[ID_COLUMN][seen], *others]
    return frame, fraction, TrainingIds(np.unique(hash_ids(ids)), digest="d"), seen


@PROPERTY
@given(
    month=st.one_of(months((0.05, 0.5)), months((1e-6, 1 - 1e-6))),  # parameter bounds, (0, 1)
    seed=seeds,
)
def test_the_fair_holdout_split_holds_for_any_month(
    month: tuple[pd.DataFrame, float, TrainingIds | None, np.ndarray | None], seed: int
) -> None:
    frame, fraction, champion_ids, seen = month
    try:
        split = split_fair_holdout(frame, fraction=fraction, seed=seed, champion_ids=champion_ids)
    except ChurnRetrainError:
        return  # a named, expected failure is allowed; anything else fails the property
    summary, holdout, train = split.summary, split.holdout, split.train

    # Train and holdout are the month, disjoint, each in the snapshot's row order.
    assert (summary.rows, summary.holdout_rows, summary.train_rows) == (
        len(frame),
        len(holdout),
        len(train),
    )
    assert len(holdout) + len(train) == len(frame)
    assert not set(holdout["row"]) & set(train["row"])
    assert set(holdout["row"]) | set(train["row"]) == set(frame["row"])
    assert holdout["row"].is_monotonic_increasing and train["row"].is_monotonic_increasing
    together = pd.concat([holdout, train]).sort_values("row").reset_index(drop=True)
    assert together.equals(frame)

    # Never a customer the champion trained on, whenever its customers are known.
    requested = max(1, round(fraction * len(frame)))
    assert summary.requested_rows == requested
    if seen is None:
        pool = frame
        assert summary.unseen_rows is None and summary.excluded_rows == 0
    else:
        pool = frame.loc[~seen]
        assert not set(holdout[ID_COLUMN]) & set(frame[ID_COLUMN][seen])
        assert (summary.excluded_rows, summary.unseen_rows) == (int(seen.sum()), len(pool))
    assert set(holdout["row"]) <= set(pool["row"])
    assert len(holdout) == min(requested, len(pool))

    # Stratified: each class within one row of its share of the pool.
    for label in ("Yes", "No"):
        share = (pool[TARGET] == label).sum() * len(holdout) / max(len(pool), 1)
        assert abs(int((holdout[TARGET] == label).sum()) - share) < 1, label

    # Seeded: the same data and seed give the same split.
    again = split_fair_holdout(frame, fraction=fraction, seed=seed, champion_ids=champion_ids)
    assert again.holdout.equals(holdout) and again.summary == summary


# --- the decision -------------------------------------------------------------------------


@st.composite
def rules(draw: st.DrawFn) -> DecisionRule:
    """Any rule within its bounds (combinations its validator refuses are skipped)."""
    metric = draw(st.sampled_from(METRICS))
    methods = ["bootstrap", "delong", "point"] if metric == "roc_auc" else ["bootstrap", "point"]
    floor = draw(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.5, 0.75, 1.0])))
    ceiling = draw(st.one_of(st.none(), st.floats(0.5, 1.0), st.just(1.0)))
    guardrails = draw(
        st.lists(
            st.builds(
                Guardrail, metric=st.sampled_from(METRICS), max_worsening=st.floats(0.0, 1.0)
            ),
            max_size=3,
        )
    )
    try:
        return DecisionRule(
            metric=metric,
            method=draw(st.sampled_from(methods)),
            min_improvement=draw(st.floats(0.0, 0.5)),
            confidence=draw(st.floats(0.5, 0.999)),
            n_bootstrap=draw(st.integers(100, 150)),
            guardrails=tuple(guardrails),
            floor=floor,
            leakage_ceiling=ceiling,
            min_holdout_rows=draw(st.integers(10, 40)),
            replace_unusable_champion=draw(st.booleans()),
        )
    except ValidationError:
        assume(False)
        raise


probability = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]),  # ties, and the ends of the range
)


@st.composite
def scores(draw: st.DrawFn, rows: int) -> np.ndarray:
    """Scores in [0, 1]: any, constant, or a few repeated values (heavy ties)."""
    kind = draw(st.sampled_from(["any", "constant", "tied"]))
    if kind == "constant":
        return np.full(rows, draw(probability))
    values = st.sampled_from([0.2, 0.5, 0.8]) if kind == "tied" else probability
    return np.array(draw(st.lists(values, min_size=rows, max_size=rows)), dtype=float)


@st.composite
def holdouts(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str | None]:
    """Labels (sometimes one class only), the challenger's scores, the champion's (absent, the
    same as the challenger's, or its own) and, sometimes, why a champion could not be scored."""
    rows = draw(st.integers(min_value=1, max_value=60))
    y = np.array(draw(st.lists(st.sampled_from([0, 1]), min_size=rows, max_size=rows)))
    if draw(st.booleans()):  # one row of one class: DeLong's variance is undefined
        lone = draw(st.sampled_from([0, 1]))
        y = np.full(rows, 1 - lone)
        y[draw(st.integers(0, rows - 1))] = lone
    ours = draw(scores(rows))
    champion = draw(st.sampled_from(["none", "same", "own"]))
    theirs = (
        None if champion == "none" else ours.copy() if champion == "same" else draw(scores(rows))
    )
    problem = draw(st.one_of(st.none(), st.just("champion v3 will not load")))
    return y, ours, None if problem else theirs, problem


@st.composite
def campaigns(draw: st.DrawFn, rows: int) -> ListTerms:
    """A list of 1..rows customers and each customer's gain if kept (some worth nothing)."""
    gains = draw(st.lists(st.sampled_from([0.0, 1.0, 50.0, 300.0]), min_size=rows, max_size=rows))
    return ListTerms(
        contacts=draw(st.integers(1, rows)),
        gains=np.array(gains, dtype=float),
        contact_cost=draw(st.sampled_from([0.0, 15.0])),
    )


@st.composite
def segment_sets(draw: st.DrawFn, rows: int) -> SegmentDraws | None:
    """None, or one to three segments of the rows (overlapping or not), judged on any metric."""
    if draw(st.booleans()):
        return None
    count = draw(st.integers(1, 3))
    masks = np.array(
        draw(st.lists(st.lists(st.booleans(), min_size=count, max_size=count), min_size=rows,
                      max_size=rows)),
        dtype=bool,
    )  # fmt: skip
    return SegmentDraws(
        labels=tuple(f"segment {i}" for i in range(count)),
        masks=masks,
        metric=draw(st.sampled_from(METRICS)),
        tolerance=draw(st.sampled_from([0.0, 0.02, 0.5])),
    )


def _check_decision(
    rule: DecisionRule,
    decision: Decision,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    champion_problem: str | None,
) -> None:
    """What every decision must satisfy, whatever the numbers."""
    assert decision.verdict in VERDICTS
    assert decision.promote == (decision.verdict in PROMOTING)
    assert decision.metric == rule.metric and decision.reason
    if decision.verdict == "insufficient-holdout":
        assert not decision.promote and decision.challenger_score is None
        return
    ours = challenger[rule.metric]
    assert decision.challenger_score == ours
    if decision.promote:  # never below the (roc_auc) floor, never a suspected leak
        assert challenger[FITNESS_METRIC] >= rule.floor
        assert rule.leakage_ceiling is None or challenger["roc_auc"] <= rule.leakage_ceiling
        assert not any(s.status == "regression" for s in decision.segments)
    if decision.verdict == "segment-regression":
        assert any(s.status == "regression" for s in decision.segments)
    if champion is None:
        allowed = {"promote-first"} if champion_problem is None else set()
        if champion_problem is not None:
            allowed = {"replace-unusable-champion", "champion-unusable"}
        assert decision.verdict in allowed | REJECTS
        assert decision.champion_score is None and decision.improvement is None
        return
    compared = {"promote", "replace-below-floor", "keep-champion", "tie", "reject-guardrail"}
    assert decision.verdict in compared | {"segment-regression"} | REJECTS
    assert decision.champion_score == champion[rule.metric]
    unfit = champion[FITNESS_METRIC] < rule.floor
    if decision.promote:  # a champion below the floor is replaced, one above it promoted
        assert decision.verdict == ("replace-below-floor" if unfit else "promote")
    gain = decision.improvement
    assert gain is not None
    assert gain == pytest.approx(metric_sign(rule.metric) * (ours - champion[rule.metric]))
    if decision.promote:
        assert all(g.passed for g in decision.guardrails)
        margin = 0.0 if unfit else rule.min_improvement  # no margin over an unfit champion
        if rule.method == "point":
            assert gain >= margin - EPS and abs(gain) > EPS
        else:
            interval = decision.interval
            assert interval is not None
            sign = metric_sign(rule.metric)
            assert min(sign * interval.lower, sign * interval.upper) > margin
    if decision.verdict == "reject-guardrail":
        assert any(not g.passed for g in decision.guardrails)
    if decision.interval is not None:
        assert math.isfinite(decision.interval.lower) and math.isfinite(decision.interval.upper)
        assert decision.interval.lower <= decision.interval.upper


@PROPERTY
@given(
    rule=rules(),
    holdout=holdouts(),
    thresholds=st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 1.0)),
    seed=seeds,
    report=st.sampled_from([(), ("roc_auc",), METRICS]),
    data=st.data(),
)
def test_evaluate_gives_one_sound_verdict_for_any_scores(
    rule: DecisionRule,
    holdout: tuple[np.ndarray, np.ndarray, np.ndarray | None, str | None],
    thresholds: tuple[float, float],
    seed: int,
    report: tuple[str, ...],
    data: st.DataObject,
) -> None:
    y, ours, theirs, problem = holdout
    terms = data.draw(campaigns(y.size))
    segments = data.draw(segment_sets(y.size))

    def evaluated() -> Evaluation:
        return evaluate(
            rule,
            y,
            ours,
            theirs,
            thresholds=thresholds,
            seed=seed,
            champion_problem=problem,
            report_metrics=report,
            terms=terms,
            segments=segments,
        )

    try:
        evaluation = evaluated()
    except ChurnRetrainError:
        return
    decision = evaluation.decision
    _check_decision(rule, decision, evaluation.challenger, evaluation.champion, problem)
    if decision.verdict == "insufficient-holdout":
        assert np.unique(y).size < 2 or (theirs is not None and y.size < rule.min_holdout_rows)
    else:
        assert np.unique(y).size == 2
    if theirs is not None and np.array_equal(ours, theirs) and thresholds[0] == thresholds[1]:
        assert decision.verdict != "promote"  # a model never beats itself
    assert evaluation == evaluated()  # deterministic


metric_values = st.fixed_dictionaries({name: probability for name in METRICS})


@st.composite
def differences(draw: st.DrawFn) -> Interval:
    lower, upper = sorted(draw(st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0))))
    return Interval(
        estimate=(lower + upper) / 2,
        lower=lower,
        upper=upper,
        confidence=0.95,
        method="test",
    )


@PROPERTY
@given(
    rule=rules(),
    challenger=metric_values,
    champion=st.one_of(st.none(), metric_values),
    difference=differences(),
    problem=st.one_of(st.none(), st.just("champion v3 will not load")),
)
def test_decide_gives_one_sound_verdict_for_any_numbers(
    rule: DecisionRule,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    difference: Interval,
    problem: str | None,
) -> None:
    champion = None if problem else champion
    try:
        decision = decide(
            rule,
            challenger,
            champion,
            difference=None if rule.method == "point" else difference,
            champion_problem=problem,
        )
    except ChurnRetrainError:
        return
    _check_decision(rule, decision, challenger, champion, problem)
