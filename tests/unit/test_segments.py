"""Segment guardrails and the campaign's numbers: pure functions on small inline data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tasks.decision.campaign import (
    Campaign,
    check_value_expression,
    customer_values,
    expected_value,
)
from tasks.decision.compare import evaluate
from tasks.decision.intervals import Interval, SegmentDraws, SegmentInterval
from tasks.decision.rule import DecisionRule, SegmentGuard, parse_segment_column
from tasks.decision.segments import holm, judge_segments, segment_draws, segment_masks


def test_segment_columns_are_checked_when_the_rule_is_made() -> None:
    assert parse_segment_column("Contract") == ("Contract", ())
    assert parse_segment_column("SeniorCitizen") == ("SeniorCitizen", ())
    assert parse_segment_column("tenure:12/24/48") == ("tenure", (12.0, 24.0, 48.0))
    for spec, problem in [
        ("Region", "not a snapshot column"),
        ("tenure", "needs band edges"),
        ("MonthlyCharges", "give band edges"),
        ("Contract:1/2", "categorical"),
        ("tenure:24/12", "must increase"),
        ("tenure:a/b", "numbers separated by /"),
    ]:
        with pytest.raises(ValueError, match=problem):
            parse_segment_column(spec)
    with pytest.raises(ValidationError, match="segment column 'Region'"):
        DecisionRule(segments={"columns": ["Region"]})
    # The command line gives a comma-separated list.
    assert SegmentGuard(columns="Contract, tenure:12/24").columns == ("Contract", "tenure:12/24")  # type: ignore[arg-type]


def test_segments_are_values_in_the_domain_order_and_bands() -> None:
    frame = pd.DataFrame(
        {
            "Contract": ["Two year", "Month-to-month", "One year", "Month-to-month"],
            "tenure": [0, 12, 30, 72],
        }
    )
    masks = segment_masks(frame, ("Contract", "tenure:12/48"))
    assert list(masks) == [
        "Contract = Month-to-month",
        "Contract = One year",
        "Contract = Two year",
        "tenure < 12",
        "12 <= tenure < 48",
        "tenure >= 48",
    ]
    assert masks["Contract = Month-to-month"].tolist() == [False, True, False, True]
    assert masks["12 <= tenure < 48"].tolist() == [False, True, True, False]


def test_holm_adjusts_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.9, 0.9]) == [1.0, 1.0]


def _interval(estimate: float, half: float = 0.01) -> Interval:
    return Interval(
        estimate=estimate,
        lower=estimate - half,
        upper=estimate + half,
        confidence=0.95,
        method="test",
    )


def test_more_segments_do_not_mean_more_refusals_by_chance() -> None:
    """Three segments each at p 0.02: alone each would be refused at the one-sided 0.025;
    Holm's correction across the three says none of them is evidence enough."""
    labels = ("a", "b", "c")
    draws = SegmentDraws(
        labels=labels, masks=np.ones((4, 3), dtype=bool), metric="roc_auc", tolerance=0.02
    )
    stats = {
        label: SegmentInterval(
            challenger=_interval(0.80),
            champion=_interval(0.83),
            difference=_interval(-0.03),
            p_worse=0.02,
        )
        for label in labels
    }
    y = np.array([0, 1, 0, 1])
    results = judge_segments(draws, stats, y, (), confidence=0.95)
    assert [r.status for r in results] == ["pass"] * 3
    assert all(r.p_adjusted == pytest.approx(0.06) for r in results)
    alone = judge_segments(
        draws.model_copy(update={"labels": ("a",), "masks": np.ones((4, 1), dtype=bool)}),
        {"a": stats["a"]},
        y,
        (),
        confidence=0.95,
    )
    assert alone[0].status == "regression"


def _month(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """A month with a month-to-month half where only the champion ranks anyone.

    The challenger is sharper everywhere else, so it wins on the whole holdout."""
    rng = np.random.default_rng(seed)
    contract = np.where(rng.random(n) < 0.5, "Month-to-month", "One year")
    y = (rng.random(n) < np.where(contract == "Month-to-month", 0.4, 0.15)).astype(int)
    noise = rng.normal(size=(3, n))
    champion = 1.0 * y + noise[0]
    month_to_month = contract == "Month-to-month"
    challenger = np.where(month_to_month, 0.2 * y + noise[1], 3.0 * y + noise[1])
    challenger += 1.2 * month_to_month  # it still knows month-to-month churns more
    frame = pd.DataFrame({"Contract": contract, "tenure": rng.integers(0, 72, n)})
    squash = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
    return frame, y, squash(challenger), squash(champion)


def test_a_challenger_worse_in_one_segment_is_refused_naming_it() -> None:
    frame, y, challenger, champion = _month()
    guard = SegmentGuard(columns=("Contract", "tenure:6"), min_rows=100)
    rule = DecisionRule(segments=guard, guardrails=(), n_bootstrap=500)
    draws, small = segment_draws(frame, y, guard)
    assert draws is not None and [r.segment for r in small] == []
    refused = evaluate(
        rule, y, challenger, champion, seed=1, report_metrics=(), segments=draws,
        small_segments=small,
    )  # fmt: skip
    decision = refused.decision
    assert decision.verdict == "segment-regression" and not decision.promote, decision.reason
    worse = [s for s in decision.segments if s.status == "regression"]
    assert [s.segment for s in worse] == ["Contract = Month-to-month"]
    assert "worse for Contract = Month-to-month: roc_auc" in decision.reason
    assert worse[0].difference is not None and worse[0].difference.upper < -0.02
    assert f"{worse[0].challenger:.4f} vs {worse[0].champion:.4f}" in decision.reason
    # Without segments the same challenger wins on the whole holdout.
    plain = evaluate(rule.model_copy(update={"segments": SegmentGuard()}), y, challenger,
                     champion, seed=1, report_metrics=())  # fmt: skip
    assert plain.decision.verdict == "promote" and plain.decision.segments == ()


def test_segments_too_small_to_judge_are_reported_not_passed() -> None:
    frame, y, challenger, champion = _month(n=1200)
    guard = SegmentGuard(columns=("tenure:3",), min_rows=200, min_churners=20)
    draws, small = segment_draws(frame, y, guard)
    assert [r.segment for r in small] == ["tenure < 3"] and small[0].status == "too-small"
    assert "too small to judge" in small[0].text()
    decision = evaluate(
        DecisionRule(segments=guard, guardrails=(), n_bootstrap=200), y, challenger, champion,
        report_metrics=(), segments=draws, small_segments=small,
    ).decision  # fmt: skip
    statuses = {s.segment: s.status for s in decision.segments}
    assert statuses == {"tenure >= 3": "pass", "tenure < 3": "too-small"}


def test_the_value_of_a_customer_is_a_safe_expression() -> None:
    frame = pd.DataFrame(
        {"MonthlyCharges": [10.0, 20.0], "tenure": [1, 0], "TotalCharges": [5.0, None]}
    )
    values, missing = customer_values("12 * MonthlyCharges", frame)
    assert values.tolist() == [120.0, 240.0] and missing == 0
    values, missing = customer_values("TotalCharges / tenure", frame)
    assert values.tolist() == [5.0, 0.0] and missing == 1  # no value: counted as 0
    assert customer_values("500", frame)[0].tolist() == [500.0, 500.0]
    for expression, problem in [
        ("__import__('os')", "only numbers"),
        ("MonthlyCharges.real", "only numbers"),
        ("Region * 2", "not a numeric column"),
        ("Contract", "not a numeric column"),
        ("12 *", "not an arithmetic expression"),
        ("'a'", "only numbers and columns"),
    ]:
        with pytest.raises(ValueError, match=problem):
            check_value_expression(expression)
    with pytest.raises(ValidationError, match="customer_value"):
        Campaign(customer_value="open('x')")
    assert expected_value(
        [0.5, 0.1], np.array([100.0, 100.0]), save_rate=0.3, contact_cost=5.0
    ).tolist() == pytest.approx([10.0, -2.0])


def test_capacity_as_a_share_or_a_number_of_customers() -> None:
    assert Campaign().contacts(1409) == 141
    assert Campaign(capacity=0.25).contacts(10) == 3  # 2.5 rounds half up
    # 700 customers of a 7,043-customer month: the holdout is judged at the same share.
    assert Campaign(customers=700).contacts(1409, population=7043) == 140
    assert Campaign(customers=700).contacts(500) == 500  # never more than there are
    assert Campaign(capacity=0.0001).contacts(100) == 1  # never an empty list
