"""A scored base's customer IDs checked across batches on their hashes: the rows that share an
ID counted exactly as on the IDs themselves, wherever the batches or partitions split them."""

from __future__ import annotations

import pickle
from itertools import pairwise

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.errors import SnapshotRejected
from tasks.scoring.batch import check_unique_ids
from tasks.scoring.unique import SeenIds


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=300),
    cuts=st.lists(st.integers(1, 299), max_size=4, unique=True),
    partitions=st.integers(1, 3),
)
def test_repeats_are_counted_as_on_the_ids(
    ids: list[str], cuts: list[int], partitions: int
) -> None:
    series = pd.Series(ids, dtype=object)
    edges = [0, *sorted(c for c in cuts if c < len(ids)), len(ids)]
    parts = [SeenIds() for _ in range(partitions)]
    for i, (start, end) in enumerate(pairwise(edges)):
        parts[i % partitions].add(series.iloc[start:end])
    seen = SeenIds.merged(pickle.loads(pickle.dumps(p)) for p in parts)  # as a cluster's
    assert seen.rows == len(ids)
    assert seen.repeated() == int(series.duplicated(keep=False).sum())


def test_a_repeat_in_two_batches_is_refused_by_name() -> None:
    seen = SeenIds()
    seen.add(pd.Series(["0001-AAAAA", "0002-BBBBB"]))
    seen.add(pd.Series(["0003-CCCCC", "0001-AAAAA"]))
    with pytest.raises(SnapshotRejected, match="2 rows share their value with another row"):
        check_unique_ids(seen, shown="base.parquet")
    distinct = SeenIds()
    distinct.add(pd.Series([f"{i:04d}-XXXXX" for i in range(5000)]))
    check_unique_ids(distinct, shown="base.parquet")  # no repeat: nothing raised
    assert distinct.rows == 5000
