"""A Parquet month streamed by the retrain is split exactly as the same month loaded whole: the
same holdout and training rows, in the same order, typed the same; its drift counted a chunk
at a time gives the whole frame's report, to the bit."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest
from tasks.data.schema import ID_COLUMN
from tasks.decision.holdout import TrainingIds, hash_ids, id_set_digest, take_rows
from tasks.decision.rule import DecisionRule
from tasks.gate.drift import DriftCounts, compare_with_profile, profile_frame
from tasks.gate.month import MonthRead, churned, validate_streamed
from tasks.gate.thresholds import DriftThresholds
from tasks.training.sample import SplitOptions, split_month
from tasks.training.streamed import choose_streamed_rows, take_part_rows

PERIOD = "2026-01"
ROWS = 4000


@pytest.fixture(scope="module")
def month_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A month stored out of customer order, in row groups smaller than a chunk."""
    frame = generate_snapshot(PERIOD, rows=ROWS).sample(frac=1.0, random_state=3)
    path = tmp_path_factory.mktemp("month") / "month.parquet"
    frame.to_parquet(path, index=False, row_group_size=700)
    return path


@pytest.fixture(scope="module")
def read(month_file: Path) -> MonthRead:
    """As the retrain reads it: labels kept, text as categoricals."""
    return MonthRead(
        str(month_file), PERIOD, chunk_rows=900, with_features=False, with_labels=True,
        categories=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def streamed(read: MonthRead):  # type: ignore[no-untyped-def]
    return validate_streamed.fn(read)


@pytest.fixture(scope="module")
def loaded(month_file: Path) -> pd.DataFrame:
    return load_snapshot.fn(SnapshotRequest(str(month_file), PERIOD, categories=True)).frame


@pytest.fixture(scope="module")
def stored(month_file: Path) -> pd.DataFrame:
    """The file's rows in its own order (the positions a streamed split names)."""
    return pd.read_parquet(month_file)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fraction=st.floats(0.05, 0.5),
    seed=st.integers(0, 2**16),
    max_train_rows=st.one_of(st.none(), st.integers(1, ROWS)),
    half_width=st.one_of(st.none(), st.floats(0.02, 0.1)),
    champion_share=st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_the_streamed_choice_takes_the_loaded_months_rows(
    streamed,  # type: ignore[no-untyped-def]
    loaded: pd.DataFrame,
    stored: pd.DataFrame,
    fraction: float,
    seed: int,
    max_train_rows: int | None,
    half_width: float | None,
    champion_share: float | None,
) -> None:
    rule = DecisionRule(holdout_half_width=half_width, min_holdout_rows=10)
    options = SplitOptions(fraction, seed, rule, max_train_rows)
    ids = None
    if champion_share is not None:  # a champion that trained on some of these customers
        seen = loaded[ID_COLUMN].sample(frac=champion_share, random_state=seed)
        hashes = hash_ids(seen)
        ids = TrainingIds(hashes, id_set_digest(hashes))
    whole = split_month(loaded, ids, options)
    choice = choose_streamed_rows(streamed.keys, ids, options)
    assert choice.holdout == whole.holdout_summary
    assert choice.training == whole.training.summary
    held = stored[ID_COLUMN].to_numpy()[choice.holdout_rows]
    trained = stored[ID_COLUMN].to_numpy()[choice.training_rows]
    assert held.tolist() == whole.holdout[ID_COLUMN].tolist()
    assert trained.tolist() == whole.training.frame[ID_COLUMN].tolist()


def test_rows_are_taken_typed_as_the_loaded_month(
    read: MonthRead, stored: pd.DataFrame, loaded: pd.DataFrame
) -> None:
    positions = np.array([0, 1, 699, 700, 899, 900, 2500, ROWS - 1])  # across groups and chunks
    rows = take_part_rows.fn(read, positions, None)
    at = pd.Index(loaded[ID_COLUMN]).get_indexer(stored[ID_COLUMN].to_numpy()[positions])
    pd.testing.assert_frame_equal(take_rows(rows, np.arange(positions.size)), take_rows(loaded, at))
    second_group = take_part_rows.fn(read, np.array([0, 5]), [1])  # positions within group 2
    assert second_group[ID_COLUMN].tolist() == stored[ID_COLUMN].iloc[[700, 705]].tolist()


def test_the_keys_are_the_months(streamed, loaded: pd.DataFrame, stored: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    keys = streamed.keys
    assert keys.part_rows == (ROWS,) and keys.churned.dtype == bool
    assert stored[ID_COLUMN].to_numpy()[keys.order].tolist() == loaded[ID_COLUMN].tolist()
    assert keys.churned[keys.order].tolist() == (loaded["Churn"] == "Yes").tolist()
    assert keys.dtypes["tenure"] == loaded["tenure"].dtype


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 2999), max_size=6, unique=True))
def test_drift_counted_in_chunks_is_the_whole_frames_to_the_bit(cuts: list[int]) -> None:
    profile = profile_frame(generate_snapshot("2025-12", rows=2000))
    month = generate_snapshot(PERIOD, rows=3000, drift=0.8, scenario="price_rise")
    month.loc[::7, "TotalCharges"] = np.nan
    month.loc[::11, "PaymentMethod"] = "Cheque"  # outside the domain: "(other)"
    edges = [0, *sorted(cuts), len(month)]
    parts = []
    for start, end in pairwise(edges):
        part = DriftCounts(profile)
        part.add(month.iloc[start:end])
        parts.append(part)
    chunked = DriftCounts.merged(parts).report(DriftThresholds(), source="s")
    whole = compare_with_profile(month, profile, DriftThresholds(), source="s")
    assert chunked == whole
    assert max(c.psi for c in whole.columns) > 0.1  # the shift is there to be counted


def test_labels_other_than_yes_and_no_cannot_be_split_on() -> None:
    assert churned(pd.Series(["Yes", "No", "No"])).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="Churn holds values other than Yes and No"):
        churned(pd.Series(["Yes", "Maybe"]))


def test_a_partitioned_folder_is_split_on_its_periods_rows(tmp_path: Path) -> None:
    """Hive partitions: the keys and the rows taken are the month's partition's, as loaded."""
    for period, rows in ((PERIOD, 2500), ("2026-02", 900)):
        folder = tmp_path / f"period={period}"
        folder.mkdir()
        generate_snapshot(period, rows=rows).sample(frac=1.0, random_state=1).to_parquet(
            folder / "part-0.parquet", index=False, row_group_size=600
        )
    read = MonthRead(str(tmp_path), PERIOD, chunk_rows=1000, with_features=False, with_labels=True)
    month = validate_streamed.fn(read)
    loaded = load_snapshot.fn(SnapshotRequest(str(tmp_path), PERIOD, categories=True)).frame
    assert month.rows == len(loaded) == 2500 and month.keys is not None
    options = SplitOptions(0.2, 5, DecisionRule(), 1000)
    choice = choose_streamed_rows(month.keys, None, options)
    whole = split_month(loaded, None, options)
    positions = np.sort(choice.training_rows)
    taken = take_part_rows.fn(read, positions, None)
    assert sorted(taken[ID_COLUMN]) == sorted(whole.training.frame[ID_COLUMN])


@settings(max_examples=60, deadline=None)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=300),
    share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_flags_draw_the_rows_their_labels_draw(flags: list[bool], share: float, seed: int) -> None:
    """A streamed month splits on churn flags, a loaded one on its Yes/No labels: same rows."""
    from tasks.decision.holdout import stratified_sample

    churn = np.array(flags)
    labels = np.where(churn, "Yes", "No").astype(object)
    size = round(share * churn.size)
    assert np.array_equal(
        stratified_sample(churn, size, seed), stratified_sample(labels, size, seed)
    )
