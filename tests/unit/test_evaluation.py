"""The decision rule, holdout metrics and their intervals: pure functions, small inline data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tasks.decision import intervals as evaluation
from tasks.decision.compare import evaluate
from tasks.decision.intervals import Interval, delong_difference, paired_bootstrap
from tasks.decision.metrics import ListTerms, holdout_metrics, resampled_metrics
from tasks.decision.rule import METRICS, DecisionRule, Guardrail
from tasks.decision.verdict import (
    decide,
    hold_if_already_promoted,
    holdout_shortfall,
    insufficient_holdout,
)

POINT = {"method": "point", "guardrails": ()}


def test_metrics_of_a_perfect_ranking() -> None:
    m = holdout_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert m["roc_auc"] == 1.0
    assert m["recall"] == 1.0 and m["precision"] == 1.0
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)


def test_metrics_threshold_moves_recall() -> None:
    y, p = [0, 1, 1, 1], [0.2, 0.3, 0.6, 0.9]
    assert holdout_metrics(y, p, threshold=0.5)["recall"] == pytest.approx(2 / 3)
    assert holdout_metrics(y, p, threshold=0.25)["recall"] == 1.0


def test_metrics_need_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        holdout_metrics([1, 1, 1], [0.5, 0.6, 0.7])


def test_first_model_is_promoted_when_it_meets_the_floor() -> None:
    d = decide(DecisionRule(floor=0.7), {"roc_auc": 0.8}, None)
    assert (d.verdict, d.promote, d.champion_score) == ("promote-first", True, None)


def test_first_model_below_the_floor_is_rejected() -> None:
    d = decide(DecisionRule(floor=0.85), {"roc_auc": 0.8}, None)
    assert (d.verdict, d.promote) == ("reject-below-floor", False)
    assert "0.8500" in d.reason


@pytest.mark.parametrize(
    ("challenger", "verdict"),
    [(0.806, "promote"), (0.805, "promote"), (0.8049, "keep-champion"), (0.79, "keep-champion")],
)
def test_point_rule_margin_over_the_champion(challenger: float, verdict: str) -> None:
    rule = DecisionRule(min_improvement=0.005, floor=0.5, **POINT)
    d = decide(rule, {"roc_auc": challenger}, {"roc_auc": 0.8})
    assert d.verdict == verdict
    assert d.improvement == pytest.approx(challenger - 0.8)


def test_floor_beats_a_worse_champion() -> None:
    """A challenger under the floor is never promoted, even over an even worse champion."""
    d = decide(DecisionRule(floor=0.8), {"roc_auc": 0.78}, {"roc_auc": 0.70})
    assert d.verdict == "reject-below-floor"


def test_lower_is_better_metric() -> None:
    rule = DecisionRule(metric="brier", min_improvement=0.01, floor=0.7, **POINT)
    fit = {"roc_auc": 0.8}
    assert decide(rule, {"brier": 0.13, **fit}, {"brier": 0.15, **fit}).verdict == "promote"
    assert decide(rule, {"brier": 0.145, **fit}, {"brier": 0.15, **fit}).verdict == "keep-champion"
    # The floor is a fitness floor on roc_auc, whatever the rule ranks by.
    assert decide(rule, {"brier": 0.10, "roc_auc": 0.65}, None).verdict == "reject-below-floor"
    assert decide(rule, {"brier": 0.30, **fit}, None).verdict == "promote-first"


def test_rule_is_validated_data() -> None:
    with pytest.raises(ValidationError, match="min_improvement"):
        DecisionRule(min_improvement=-0.1)
    with pytest.raises(ValidationError, match="metric"):
        DecisionRule(metric="auc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="delong"):
        DecisionRule(method="delong", metric="brier")
    with pytest.raises(ValidationError, match="leakage_ceiling"):
        DecisionRule(floor=0.8, leakage_ceiling=0.75)
    with pytest.raises(ValidationError, match="extra"):
        DecisionRule(margin=0.01)  # type: ignore[call-arg]
    assert DecisionRule.model_validate(DecisionRule().model_dump()) == DecisionRule()
    assert DecisionRule.model_validate_json(DecisionRule().model_dump_json()) == DecisionRule()


def test_same_inputs_same_decision() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    a = decide(DecisionRule(), holdout_metrics(y, p), None)
    b = decide(DecisionRule(), holdout_metrics(y, p), None)
    assert a == b


# --- the statistics ------------------------------------------------------------------------


def _scores(n: int = 1409, seed: int = 0, gap: float = 0.0) -> tuple[np.ndarray, ...]:
    """Labels and two correlated scores; `gap` > 0 makes the challenger (first) better."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.265).astype(int)
    shared = rng.normal(size=n)
    champion = 1 / (1 + np.exp(-(1.3 * y + shared + 0.3 * rng.normal(size=n) - 1.2)))
    challenger = 1 / (1 + np.exp(-((1.3 + gap) * y + shared + 0.3 * rng.normal(size=n) - 1.2)))
    return y, challenger, champion


def _terms(n: int, seed: int = 0) -> ListTerms:
    gains = np.random.default_rng(seed).uniform(50, 400, n)
    return ListTerms(contacts=max(1, n // 10), gains=gains, contact_cost=15.0)


def _list_reference(
    y: np.ndarray, p: np.ndarray, terms: ListTerms, gains: np.ndarray
) -> dict[str, float]:
    """The list metrics the slow way: walk the scores from the top, a tie group at a time;
    the group at the edge of the list shares its remaining places equally (a random
    tie-break's average)."""
    on_list = np.zeros(y.size)
    room = float(terms.contacts)
    for score in sorted(set(p.tolist()), reverse=True):
        group = np.flatnonzero(p == score)
        taken = min(room, group.size)
        on_list[group] = taken / group.size
        room -= taken
    hits, k, positives = float(on_list @ y), float(on_list.sum()), float(y.sum())
    value = float(on_list @ (y * gains)) - terms.contact_cost * k
    return {
        "recall_at_capacity": hits / positives,
        "precision_at_capacity": hits / k,
        "f1_at_capacity": 2 * hits / (k + positives),
        "lift_at_capacity": (hits / k) / (positives / y.size),
        "retention_value_at_capacity": value / y.size,
    }


def test_resampled_metrics_with_unit_weights_equal_sklearn_and_the_slow_list() -> None:
    y, p, _ = _scores(n=500)
    p = np.round(p, 2)  # many ties: AUC and average precision must treat them as sklearn does
    terms = _terms(y.size)
    expected = holdout_metrics(y, p, threshold=0.4, terms=terms)
    got = resampled_metrics(y, p, np.ones((1, y.size)), threshold=0.4, terms=terms)
    assert set(got) == set(expected) == set(METRICS)
    for name in METRICS:
        assert got[name][0] == pytest.approx(expected[name], abs=1e-12), name
    assert terms.gains is not None
    for name, value in _list_reference(y, p, terms, terms.gains).items():
        assert got[name][0] == pytest.approx(value, abs=1e-12), name


def test_resampled_metrics_with_counts_equal_repeated_rows() -> None:
    y, p, _ = _scores(n=400, seed=3)
    p = np.round(p, 2)
    terms = _terms(y.size, seed=3)
    assert terms.gains is not None
    counts = np.random.default_rng(1).integers(0, 4, size=(3, y.size)).astype(float)
    got = resampled_metrics(y, p, counts, threshold=0.5, terms=terms)
    for b in range(3):  # several resamples at once share one ranking of the scores
        rows = np.repeat(np.arange(y.size), counts[b].astype(int))
        repeated = ListTerms(terms.contacts, terms.gains[rows], terms.contact_cost)
        expected = holdout_metrics(y[rows], p[rows], terms=repeated)
        # The list of a resample: its riskiest rows, each copy of a row a customer.
        expected |= _list_reference(y[rows], p[rows], repeated, terms.gains[rows])
        for name in METRICS:
            assert got[name][b] == pytest.approx(expected[name], abs=1e-9), (b, name)


def test_chunked_bootstrap_equals_resampling_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks of resamples share each model's ranking; every resample must still score
    exactly as its rows drawn out and scored from scratch would."""
    y, a, b = _scores(n=200, seed=5)
    a, b = np.round(a, 2), np.round(b, 2)  # ties
    drawn: list[np.ndarray] = []

    def _recorded(*args: object) -> np.ndarray:
        counts = draw(*args)
        drawn.append(counts)
        return counts

    draw = evaluation._stratified_counts
    monkeypatch.setattr(evaluation, "_stratified_counts", _recorded)
    monkeypatch.setattr(evaluation, "_CHUNK_CELLS", 4 * y.size)  # 8 chunks, the last short
    terms = _terms(y.size, seed=5)
    assert terms.gains is not None
    got = paired_bootstrap(y, a, b, n_resamples=30, seed=2, confidence=0.9, terms=terms)
    counts = np.vstack(drawn)
    assert len(drawn) == 8 and counts.shape == (30, y.size)
    for name in METRICS:
        values = {"challenger": [], "champion": [], "difference": []}
        for row in counts:
            rows = np.repeat(np.arange(y.size), row.astype(int))
            repeated = ListTerms(terms.contacts, terms.gains[rows], terms.contact_cost)
            ours = holdout_metrics(y[rows], a[rows], terms=repeated)[name]
            theirs = holdout_metrics(y[rows], b[rows], terms=repeated)[name]
            values["challenger"].append(ours)
            values["champion"].append(theirs)
            values["difference"].append(ours - theirs)
        for side, interval in (
            ("challenger", got.challenger[name]),
            ("champion", got.champion[name]),
            ("difference", got.difference[name]),
        ):
            lower, upper = np.quantile(values[side], [0.05, 0.95])
            assert interval.lower == pytest.approx(lower, abs=1e-12), (name, side)
            assert interval.upper == pytest.approx(upper, abs=1e-12), (name, side)


def test_bootstrap_is_seeded_and_paired() -> None:
    y, a, b = _scores()
    first = paired_bootstrap(y, a, b, metrics=["roc_auc", "brier"], n_resamples=500, seed=7)
    again = paired_bootstrap(y, a, b, metrics=["roc_auc", "brier"], n_resamples=500, seed=7)
    other = paired_bootstrap(y, a, b, metrics=["roc_auc", "brier"], n_resamples=500, seed=8)
    assert first == again
    assert first.difference["roc_auc"] != other.difference["roc_auc"]
    diff = first.difference["roc_auc"]
    assert diff.lower < diff.estimate < diff.upper
    assert diff.estimate == pytest.approx(
        holdout_metrics(y, a)["roc_auc"] - holdout_metrics(y, b)["roc_auc"]
    )
    # Paired: the interval of the difference is far narrower than either model's own interval.
    own = first.challenger["roc_auc"]
    assert diff.upper - diff.lower < 0.6 * (own.upper - own.lower)


def test_identical_models_have_a_zero_width_difference() -> None:
    y, a, _ = _scores()
    diff = paired_bootstrap(y, a, a, metrics=["roc_auc"], n_resamples=200, seed=0).difference
    assert diff["roc_auc"].lower == diff["roc_auc"].upper == 0.0


def test_bootstrap_and_delong_agree() -> None:
    y, a, b = _scores(gap=0.2, seed=5)
    boot = paired_bootstrap(y, a, b, metrics=["roc_auc"], n_resamples=2000, seed=1)
    delong = delong_difference(y, a, b)
    assert delong.estimate == pytest.approx(boot.difference["roc_auc"].estimate, abs=1e-12)
    assert delong.lower == pytest.approx(boot.difference["roc_auc"].lower, abs=0.003)
    assert delong.upper == pytest.approx(boot.difference["roc_auc"].upper, abs=0.003)


def test_intervals_cover_the_true_difference_about_as_often_as_claimed() -> None:
    """Equal-quality models: the 90% interval of the AUC difference covers 0 in ~90% of
    holdouts. Coverage far off would mean the interval is wrong."""
    covered = 0
    for trial in range(60):
        y, a, b = _scores(n=600, seed=100 + trial)
        diff = paired_bootstrap(
            y, a, b, metrics=["roc_auc"], n_resamples=400, confidence=0.9, seed=trial
        ).difference["roc_auc"]
        covered += diff.lower <= 0.0 <= diff.upper
    assert 0.78 <= covered / 60 <= 0.99


# --- the verdicts ----------------------------------------------------------------------------


def _diff(lower: float, upper: float, estimate: float | None = None) -> Interval:
    mid = (lower + upper) / 2 if estimate is None else estimate
    return Interval(estimate=mid, lower=lower, upper=upper, confidence=0.95, method="test")


CHAMPION = {"roc_auc": 0.84, "recall_at_capacity": 0.55, "brier": 0.14}


def _challenger(auc: float, recall: float = 0.55, brier: float = 0.14) -> dict[str, float]:
    return {"roc_auc": auc, "recall_at_capacity": recall, "brier": brier}


@pytest.mark.parametrize(
    ("interval", "verdict"),
    [
        ((0.004, 0.02), "promote"),  # lower bound clears the +0.002 margin
        ((0.001, 0.02), "keep-champion"),  # better, but not by the margin
        ((-0.004, 0.012), "tie"),  # includes no improvement
        ((0.0, 0.0), "tie"),  # identical models
        ((-0.02, -0.003), "keep-champion"),  # the champion is better
    ],
)
def test_interval_rule(interval: tuple[float, float], verdict: str) -> None:
    d = decide(DecisionRule(), _challenger(0.85), CHAMPION, difference=_diff(*interval))
    assert d.verdict == verdict
    assert d.promote == (verdict == "promote")
    assert "champion stays" in d.reason or d.promote or "margin" in d.reason
    assert len(d.guardrails) == 2 and all(g.passed for g in d.guardrails)


def test_interval_rule_for_lower_is_better_metrics() -> None:
    rule = DecisionRule(metric="brier", guardrails=())
    # challenger - champion brier in [-0.01, -0.004]: the challenger is better by 0.004 at least.
    ours, theirs = _challenger(0.85, brier=0.13), CHAMPION
    better = decide(rule, ours, theirs, difference=_diff(-0.01, -0.004))
    assert better.verdict == "promote" and better.improvement == pytest.approx(0.01)
    ours = _challenger(0.85, brier=0.15)
    worse = decide(rule, ours, theirs, difference=_diff(0.004, 0.016))
    assert worse.verdict == "keep-champion"


def test_recall_guardrail_rejects_a_better_ranker() -> None:
    d = decide(
        DecisionRule(),
        _challenger(0.86, recall=0.48),
        CHAMPION,
        difference=_diff(0.01, 0.03),
    )
    assert d.verdict == "reject-guardrail" and not d.promote
    recall = next(g for g in d.guardrails if g.metric == "recall_at_capacity")
    assert not recall.passed and recall.worsening == pytest.approx(0.07)
    assert "recall_at_capacity 0.4800 vs 0.5500" in d.reason


def test_brier_guardrail_rejects_worse_calibration() -> None:
    rule = DecisionRule(guardrails=(Guardrail(metric="brier", max_worsening=0.005),))
    d = decide(rule, _challenger(0.86, brier=0.15), CHAMPION, difference=_diff(0.01, 0.03))
    assert d.verdict == "reject-guardrail"
    assert d.guardrails[0].worsening == pytest.approx(0.01)


def test_guardrails_only_matter_for_a_promotion() -> None:
    d = decide(
        DecisionRule(), _challenger(0.84, recall=0.3), CHAMPION, difference=_diff(-0.01, 0.01)
    )
    assert d.verdict == "tie"
    assert not d.guardrails[0].passed  # still recorded


def test_leakage_is_rejected_even_without_a_champion() -> None:
    d = decide(DecisionRule(), _challenger(0.97), None)
    assert d.verdict == "reject-leakage-suspected" and not d.promote
    assert "0.9700" in d.reason and "leakage" in d.reason
    d = decide(DecisionRule(), _challenger(0.97), CHAMPION, difference=_diff(0.1, 0.15))
    assert d.verdict == "reject-leakage-suspected"
    assert decide(DecisionRule(leakage_ceiling=None), _challenger(0.97), None).promote


def test_unusable_champion_is_replaced_by_a_sound_challenger() -> None:
    problem = "champion v3 will not load: UnpicklingError: invalid load key"
    d = decide(DecisionRule(), _challenger(0.85), None, champion_problem=problem)
    assert d.verdict == "replace-unusable-champion" and d.promote
    assert d.reason.startswith(problem)
    kept = decide(
        DecisionRule(replace_unusable_champion=False),
        _challenger(0.85),
        None,
        champion_problem=problem,
    )
    assert kept.verdict == "champion-unusable" and not kept.promote
    # Floor and leakage still come first.
    assert (
        decide(DecisionRule(), _challenger(0.7), None, champion_problem=problem).verdict
        == "reject-below-floor"
    )


def test_interval_rules_need_the_interval() -> None:
    with pytest.raises(ValueError, match="needs the interval"):
        decide(DecisionRule(), _challenger(0.85), CHAMPION)


def test_holdout_shortfall() -> None:
    rule = DecisionRule(min_holdout_rows=100)
    assert holdout_shortfall(rule, rows=90, positives=20, with_champion=True) is not None
    assert holdout_shortfall(rule, rows=90, positives=20, with_champion=False) is None
    assert "one class" in (
        holdout_shortfall(rule, rows=300, positives=0, with_champion=False) or ""
    )
    d = insufficient_holdout(rule, "only 90 rows")
    assert d.verdict == "insufficient-holdout" and not d.promote and d.challenger_score is None


def test_a_period_promoted_once_holds_a_second_promotion_but_nothing_else() -> None:
    won = decide(DecisionRule(**POINT), _challenger(0.85), CHAMPION)
    held = hold_if_already_promoted(won, "4")
    assert (held.verdict, held.promote, held.superseded) == ("already-promoted", False, "promote")
    assert (
        held.reason
        == f"version 4 was already promoted for this period (would have been: {won.reason})"
    )
    assert hold_if_already_promoted(won, None) == won
    kept = decide(DecisionRule(**POINT), _challenger(0.70), CHAMPION)
    assert hold_if_already_promoted(kept, "4") == kept


def test_evaluate_promotes_a_clearly_better_model_and_is_repeatable() -> None:
    y, better, champion = _scores(gap=0.2, seed=11)
    first = evaluate(DecisionRule(n_bootstrap=500), y, better, champion, seed=3)
    assert first.decision.verdict == "promote"
    # Everything but the retention value, which needs each customer's value.
    everything = set(METRICS) - {"retention_value_at_capacity"}
    assert first.intervals is not None and set(first.intervals.difference) == everything
    assert first == evaluate(DecisionRule(n_bootstrap=500), y, better, champion, seed=3)
    # The other way round the champion is clearly better.
    assert evaluate(
        DecisionRule(n_bootstrap=500), y, champion, better, seed=3
    ).decision.verdict == ("keep-champion")


def test_evaluate_with_delong_and_point_methods() -> None:
    y, a, b = _scores(gap=0.2, seed=11)
    delong = evaluate(DecisionRule(method="delong"), y, a, b, report_metrics=())
    assert delong.decision.verdict == "promote"
    assert delong.decision.interval is not None
    assert delong.decision.interval.method == "DeLong paired"
    point = evaluate(DecisionRule(**POINT), y, a, b, report_metrics=())
    assert point.decision.verdict == "promote" and point.decision.interval is None
    assert point.intervals is None  # nothing bootstrapped when nothing needs it


def test_delong_with_a_single_positive_is_no_evidence_not_nan() -> None:
    """One positive (or negative) leaves DeLong's variance undefined: it gave a NaN interval
    and a keep-champion "[+nan, +nan]". Now the interval is all of [-1, 1]: a tie."""
    y = np.array([0] * 20 + [1])
    a, b = np.linspace(0, 1, 21), np.random.default_rng(0).random(21)
    diff = delong_difference(y, a, b)
    assert (diff.lower, diff.upper) == (-1.0, 1.0)
    assert diff.estimate == pytest.approx(0.9)
    rule = DecisionRule(method="delong", guardrails=(), leakage_ceiling=None, min_holdout_rows=10)
    d = evaluate(rule, y, a, b, report_metrics=()).decision
    assert d.verdict == "tie" and "nan" not in d.reason


def test_evaluate_on_a_one_class_holdout_is_insufficient_not_an_error() -> None:
    """Found by the property tests: `evaluate` raised ValueError on one-class labels."""
    for y in (np.zeros(30, dtype=int), np.ones(30, dtype=int)):
        e = evaluate(DecisionRule(), y, np.full(30, 0.3), None)
        assert e.decision.verdict == "insufficient-holdout" and not e.decision.promote
        assert "one class" in e.decision.reason and e.challenger == {}
