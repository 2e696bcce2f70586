"""The cap on training rows: a stratified, seeded sample of the training split, recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from cli.commands import flow_parameters
from cli.options import parse
from flows.parameters import RetrainParameters
from tasks.data.schema import ID_COLUMN, TARGET
from tasks.decision.holdout import split_fair_holdout
from tasks.report.summary import summary
from tasks.training.plan import DEFAULT_MAX_TRAIN_ROWS
from tasks.training.sample import sample_training_rows


def _frame(no: int, yes: int) -> pd.DataFrame:
    ids = [f"c{i:05d}" for i in range(no + yes)]
    return pd.DataFrame(
        {ID_COLUMN: ids, "tenure": range(no + yes), TARGET: ["No"] * no + ["Yes"] * yes}
    )


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame[TARGET].value_counts().items()}


def test_over_the_cap_each_class_keeps_its_share_within_one_row() -> None:
    train = _frame(737, 263)
    sample = sample_training_rows(train, max_rows=101, seed=7)
    counts = _counts(sample.frame)
    assert sum(counts.values()) == 101
    assert abs(counts["No"] - 101 * 0.737) < 1 and abs(counts["Yes"] - 101 * 0.263) < 1
    assert sample.frame[ID_COLUMN].is_unique
    assert set(sample.frame[ID_COLUMN]) <= set(train[ID_COLUMN])
    assert list(sample.frame[ID_COLUMN]) == sorted(sample.frame[ID_COLUMN])  # split order kept
    s = sample.summary
    assert (s.rows_available, s.rows_used, s.max_rows, s.seed) == (1000, 101, 101, 7)
    assert s.sampled
    assert "1,000 training rows, over the cap of 101" in s.reason and "seed 7" in s.reason


def test_the_same_seed_draws_the_same_rows_and_another_seed_others() -> None:
    train = _frame(600, 200)
    first = sample_training_rows(train, max_rows=100, seed=3).frame
    again = sample_training_rows(train, max_rows=100, seed=3).frame
    other = sample_training_rows(train, max_rows=100, seed=4).frame
    pd.testing.assert_frame_equal(first, again)
    assert set(first[ID_COLUMN]) != set(other[ID_COLUMN])


@pytest.mark.parametrize("cap", [None, 800, 5_000])
def test_at_or_below_the_cap_every_row_is_used(cap: int | None) -> None:
    train = _frame(600, 200)
    sample = sample_training_rows(train, max_rows=cap, seed=1)
    assert sample.frame is train  # not copied, not reordered
    assert not sample.summary.sampled and sample.summary.rows_used == 800
    assert sample.summary.reason == (
        "no cap: trained on every training row"
        if cap is None
        else f"800 training rows, at or below the cap of {cap:,}: trained on all"
    )


def test_only_the_training_split_is_sampled() -> None:
    month = _frame(1_500, 500)
    split = split_fair_holdout(month, fraction=0.2, seed=5)
    holdout_before = split.holdout.copy()
    sample = sample_training_rows(split.train, max_rows=300, seed=5)
    pd.testing.assert_frame_equal(split.holdout, holdout_before)
    assert set(sample.frame[ID_COLUMN]).isdisjoint(split.holdout[ID_COLUMN])
    assert len(split.train) == 1_600 and sample.summary.rows_available == 1_600


def test_a_cap_below_one_row_is_refused() -> None:
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        sample_training_rows(_frame(10, 10), max_rows=0, seed=1)


@settings(max_examples=200, deadline=None)
@given(
    no=st.integers(0, 400), yes=st.integers(0, 400), cap=st.integers(1, 900),
    seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_any_size_and_balance_gives_min_of_rows_and_cap_stratified(
    no: int, yes: int, cap: int, seed: int
) -> None:
    train = _frame(no, yes)
    sample = sample_training_rows(train, max_rows=cap, seed=seed)
    n = no + yes
    assert len(sample.frame) == sample.summary.rows_used == min(n, cap)
    assert sample.summary.sampled == (cap < n)
    assert sample.frame[ID_COLUMN].is_unique
    assert set(sample.frame[ID_COLUMN]) <= set(train[ID_COLUMN])
    if min(no, yes) >= 2:  # with a class of one row (or one class) the draw is a plain shuffle
        counts = _counts(sample.frame)
        for label, rows in (("No", no), ("Yes", yes)):
            assert abs(counts.get(label, 0) - len(sample.frame) * rows / n) < 1


def test_the_cap_is_a_flag_and_null_trains_on_everything() -> None:
    assert RetrainParameters().max_train_rows == DEFAULT_MAX_TRAIN_ROWS
    _, command = parse(["run", "--max-train-rows", "null"])
    assert flow_parameters(command, RetrainParameters).max_train_rows is None
    _, command = parse(["run", "--max-train-rows", "5000"])
    assert flow_parameters(command, RetrainParameters).max_train_rows == 5_000
    with pytest.raises(ValueError, match="greater than or equal to 100"):
        RetrainParameters(max_train_rows=10)


@pytest.mark.usefixtures("prefect_server")
def test_the_flow_trains_on_the_sample_and_says_so(state_home: Path) -> None:
    from flows.retrain import retrain

    fast: dict[str, Any] = {
        "models": ["lr"],
        "folds": 2,
        "generated_rows": 3000,
        "seed": 3,
        "data": "generated",
    }
    record = retrain(RetrainParameters(period="2026-01", max_train_rows=1000, **fast))
    sample = record.training_sample
    assert sample is not None and sample.sampled
    assert (sample.rows_available, sample.rows_used, sample.seed) == (2400, 1000, 3)
    assert record.train_rows == 1000 and record.holdout_rows == 600  # the holdout is whole
    assert record.holdout_split is not None and record.holdout_split.train_rows == 2400
    assert "training     1,000 of 2,400 rows: a stratified sample (cap 1,000, seed 3" in (
        summary(record)
    )
    run = MlflowClient().get_run(record.mlflow_run_id)
    assert run.data.params["max_train_rows"] == "1000"
    tags = run.data.tags
    assert (tags["training.sampled"], tags["training.rows_available"]) == ("true", "2400")
    assert tags["training.rows_used"] == "1000" and tags["training_ids.count"] == "1000"
    assert "over the cap of 1,000" in tags["training.sample_reason"]
    path = mlflow.artifacts.download_artifacts(
        run_id=record.mlflow_run_id, artifact_path="decision.json"
    )
    assert json.loads(Path(path).read_text())["training_sample"]["rows_used"] == 1000
    # The champion's training customers are the sample: next month's holdout may use the rest.
    again = retrain(RetrainParameters(period="2026-01", max_train_rows=None, **fast))
    assert again.holdout_split is not None and again.holdout_split.excluded_rows == 1000
    assert again.training_sample is not None and not again.training_sample.sampled
    assert "training  " not in summary(again)
    assert np.isfinite(again.challenger.holdout["roc_auc"])
