"""The split of a streamed month (`split_streamed`): the same holdout and training sample as
`split_month` gives the month loaded whole, chosen from its labels and customer order, and
taken in a second pass over its source. Only the capped holdout and the capped training sample
are ever in memory; on a cluster, each row group's rows are taken by a task of their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NoReturn, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from tasks.data.snapshot import Snapshot
from tasks.data.source import ReadLimits, locate_month, source_for
from tasks.decision.holdout import (
    HoldoutSummary,
    TrainingIds,
    choose_fair_holdout,
    hash_ids,
    take_rows,
)
from tasks.gate.month import MonthKeys, MonthRead, StreamedSnapshot
from tasks.steps import on_cluster, retried_step
from tasks.training.sample import (
    MonthSplit,
    SampledTraining,
    SplitOptions,
    TrainingSample,
    choose_training_rows,
    holdout_cap,
    split_month,
)


def split_snapshot(
    snapshot: Snapshot | StreamedSnapshot, champion_ids: TrainingIds | None, options: SplitOptions
) -> MonthSplit:
    """`split_month` of a loaded month, `split_streamed` of a streamed one: the same split."""
    if isinstance(snapshot, Snapshot):
        return split_month(snapshot.frame, champion_ids, options)
    return split_streamed(snapshot, champion_ids, options)


def split_streamed(
    snapshot: StreamedSnapshot, champion_ids: TrainingIds | None, options: SplitOptions
) -> MonthSplit:
    """`split_month` of a month never loaded: positions chosen in customer order from the
    labels (the same draws as the whole month's), their rows read in a second pass."""
    choice = choose_streamed_rows(snapshot.keys, champion_ids, options)
    held, trained = choice.holdout_rows, choice.training_rows
    rows = take_streamed_rows(
        snapshot.read, np.concatenate([held, trained]), snapshot.keys.part_rows
    )
    # A chunk's column may be narrower than the month's (no missing value in it: int, not float).
    dtypes = snapshot.keys.dtypes
    rows = rows.astype({c: t for c, t in dtypes.items() if rows[c].dtype != t})
    holdout = take_rows(rows, np.arange(held.size))
    frame = take_rows(rows, np.arange(held.size, held.size + trained.size))
    return MonthSplit(holdout, choice.holdout, SampledTraining(frame, choice.training))


@dataclass(frozen=True)
class StreamedChoice:
    """Which of a streamed month's rows (positions in its row order, listed in customer order)
    form the holdout and the training sample, and the summaries the record keeps."""

    holdout_rows: npt.NDArray[np.intp]
    training_rows: npt.NDArray[np.intp]
    holdout: HoldoutSummary
    training: TrainingSample


def choose_streamed_rows(
    keys: MonthKeys, champion_ids: TrainingIds | None, options: SplitOptions
) -> StreamedChoice:
    """`split_month`'s choice, made on the month's labels in customer order (`keys.order`):
    the rows a loaded month's split takes, as positions in the month's own row order."""
    churned = keys.churned[keys.order]  # in customer order, as a loaded month's rows are
    choice = choose_fair_holdout(
        churned,
        lambda known: _seen(keys.ids, known)[keys.order],
        fraction=options.fraction,
        seed=options.seed,
        champion_ids=champion_ids,
        max_rows=holdout_cap(options.rule, churned),
    )
    training, summary = choose_training_rows(
        churned, choice.train_positions, max_rows=options.max_train_rows, seed=options.seed
    )
    return StreamedChoice(
        keys.order[choice.holdout_positions], keys.order[training], choice.summary, summary
    )


def take_streamed_rows(
    read: MonthRead, positions: npt.NDArray[np.intp], part_rows: Sequence[int]
) -> pd.DataFrame:
    """The month's rows at `positions` (its row order), in the order given, typed as the
    gate's pass typed them: one pass over the source, or one task per row group on a
    cluster (`part_rows`: the rows of each, as the gate's partitioned pass counted them)."""
    by_file = np.argsort(positions, kind="stable")
    wanted = positions[by_file]  # ascending: taken as the pass meets them
    if on_cluster() and len(part_rows) > 1:
        starts = np.concatenate([[0], np.cumsum(part_rows)])
        futures = []
        for group, (first, end) in enumerate(pairwise(starts)):
            inside = wanted[(wanted >= first) & (wanted < end)] - first
            if inside.size:
                futures.append(take_part_rows.submit(read, inside, [group]))
        pieces = [cast(pd.DataFrame, f.result()) for f in futures]
        found = pd.concat(pieces, ignore_index=True) if pieces else _empty(read)
    else:
        found = cast(pd.DataFrame, take_part_rows(read, wanted, None))
    # Back to the order asked for: the k-th row read is the one asked for at by_file[k].
    return take_rows(found, np.argsort(by_file, kind="stable"))


@retried_step("take-rows", delay_seconds=5)  # a read: safe to repeat
def take_part_rows(
    read: MonthRead, positions: npt.NDArray[np.intp], groups: Sequence[int] | None
) -> pd.DataFrame:
    """The rows at ascending `positions` of the month's row groups `groups` (all: None),
    typed as the gate's pass typed them (`Source.take`)."""
    location = locate_month(read.location, read.period, read.options)
    limits = ReadLimits.from_settings(read.max_bytes)
    return source_for(location).take(location, positions, limits=limits, groups=groups)


def _empty(read: MonthRead) -> NoReturn:
    raise ValueError(f"no rows to take from {read.location}: the gate passed an empty month")


def _seen(ids: object, known: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Whether each of the month's customers (IDs in its row order, an Arrow array) is among
    the `known` hashes: hashed an Arrow chunk at a time, 1 byte a customer kept."""
    import pyarrow as pa

    chunked = cast(pa.ChunkedArray, ids)
    parts = [np.isin(hash_ids(chunk.to_pylist()), known) for chunk in chunked.chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
