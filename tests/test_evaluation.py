"""The decision rule and holdout metrics: pure functions, small inline data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tasks.evaluation import DecisionRule, decide, holdout_metrics


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
def test_margin_over_the_champion(challenger: float, verdict: str) -> None:
    rule = DecisionRule(min_improvement=0.005, floor=0.5)
    d = decide(rule, {"roc_auc": challenger}, {"roc_auc": 0.8})
    assert d.verdict == verdict
    assert d.improvement == pytest.approx(challenger - 0.8)


def test_floor_beats_a_worse_champion() -> None:
    """A challenger under the floor is never promoted, even over an even worse champion."""
    d = decide(DecisionRule(floor=0.8), {"roc_auc": 0.78}, {"roc_auc": 0.70})
    assert d.verdict == "reject-below-floor"


def test_lower_is_better_metric() -> None:
    rule = DecisionRule(metric="brier", min_improvement=0.01, floor=0.25)
    assert decide(rule, {"brier": 0.13}, {"brier": 0.15}).verdict == "promote"
    assert decide(rule, {"brier": 0.145}, {"brier": 0.15}).verdict == "keep-champion"
    assert decide(rule, {"brier": 0.30}, None).verdict == "reject-below-floor"


def test_rule_is_validated_data() -> None:
    with pytest.raises(ValidationError, match="min_improvement"):
        DecisionRule(min_improvement=-0.1)
    with pytest.raises(ValidationError, match="metric"):
        DecisionRule(metric="auc")  # type: ignore[arg-type]
    assert DecisionRule.model_validate(DecisionRule().model_dump()) == DecisionRule()


def test_same_inputs_same_decision() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    a = decide(DecisionRule(), holdout_metrics(y, p), None)
    b = decide(DecisionRule(), holdout_metrics(y, p), None)
    assert a == b
