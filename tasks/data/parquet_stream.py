"""Reading a Parquet month a part at a time, never whole, in the order a whole read has, each part
typed as a whole read types it: chunks for the suite (`parquet_chunks`: as read and as typed),
batches for scoring (`typed_batches`: read in a thread while the one before is scored). Each
wait for a part is bounded by the read's deadline (`Deadline`), per part."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import suppress
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tasks.data.fetch import (
    READ_TIMEOUT_SECONDS,
    open_filesystem,
    storage_call,
    storage_error,
    too_slow,
)
from tasks.data.parquet_files import WHAT, no_period_rows, not_parquet, open_month, row_groups
from tasks.data.request import SourceOptions
from tasks.data.schema import ID_COLUMN
from tasks.data.source import Location, ReadLimits
from tasks.data.typed import check_typed_frame
from tasks.errors import SnapshotRejected
from tasks.messages import normalise_name
from tasks.runtime.deadline import Deadline, DeadlineExceeded


def typed_batches(
    location: Location,
    *,
    batch_rows: int,
    deadline: Deadline,
    groups: Sequence[int] | None = None,
) -> Generator[tuple[pd.DataFrame, str], None, None]:
    """(frame, which rows) per batch of about `batch_rows`, typed by `check_typed_frame`; each
    batch waited for at most the deadline's seconds.

    The same files and period filter as the whole-file read (`read_parquet_frame`), in the
    same order. Batches of a file with small row groups are gathered up to `batch_rows`.
    """
    shown, options, period = location.shown, location.options, location.period
    fs, path = open_filesystem(
        location.text, shown=shown, timeout=deadline.timeout(READ_TIMEOUT_SECONDS)
    )
    scan = _scan(fs, path, options, period, shown=shown, rows=batch_rows, groups=groups)
    # A partition's rows are numbered within its row groups: say which they are.
    label = (
        shown if groups is None else f"{shown} row group {', '.join(str(g + 1) for g in groups)}"
    )
    pending: list[Any] = []  # emptied by `_typed`: no Arrow copy lives beside its frame
    first = rows = 0
    for batch in chain(_read_ahead(scan, shown=shown, seconds=deadline.seconds), [None]):
        # A folder's files may differ in types: their batches never share a frame.
        if pending and (batch is None or not batch.schema.equals(pending[0].schema)):
            yield _typed(pending, label, first, rows, period, options)
            first = rows
        if batch is not None and batch.num_rows:
            pending.append(batch)
            rows += batch.num_rows
            del batch
            if rows - first >= batch_rows:
                yield _typed(pending, label, first, rows, period, options)
                first = rows
    if rows == 0 and groups is None:

        def unusable() -> SnapshotRejected | None:
            dataset, selected = open_month(
                fs, path, period=period, period_column=options.period_column, shown=shown,
                max_bytes=None,
            )  # fmt: skip
            return no_period_rows(
                dataset, selected, period=period, period_column=options.period_column,
                shown=shown,
            )  # fmt: skip

        raise storage_call(
            unusable, shown=shown, deadline=Deadline.after(deadline.seconds)
        ) or SnapshotRejected(f"Snapshot {shown}: the {WHAT} has no rows for {period}")


def _typed(
    batches: list[Any], shown: str, first: int, last: int, period: str, options: SourceOptions
) -> tuple[pd.DataFrame, str]:
    """Rows `first + 1`..`last` as one frame typed by `check_typed_frame`, and their name."""
    import pyarrow as pa

    where = f"{shown} rows {first + 1:,}-{last:,}"
    frame = pa.Table.from_batches(batches).to_pandas()
    batches.clear()  # the Arrow copy goes as soon as pandas has the rows
    # Text read as dictionaries stays categorical: the suite and the model are faster on it.
    typed = check_typed_frame(
        frame, source=where, period=period, period_column=options.period_column,
        what=WHAT, categories=True,
    )  # fmt: skip
    return typed, where


def _scan(
    fs: Any,
    path: str,
    options: SourceOptions,
    period: str,
    *,
    shown: str,
    rows: int,
    groups: Sequence[int] | None = None,
) -> Iterator[Any]:
    """Record batches of the Parquet file or folder at `path`, in the order a whole read has.

    One `ParquetFile` at a time, not the dataset's scanner: that reads ahead without bound
    when scoring is slower than reading (900 MB of Arrow buffers after six batches).
    """
    import pyarrow.parquet as pq

    # As `read_parquet_frame`: a period column pyarrow sees as a partition selects the rows
    # (the files of a Hive partition, or the rows of a file holding the column). Streamed:
    # no size limit.
    dataset, only = open_month(
        fs, path, period=period, period_column=options.period_column, shown=shown,
        max_bytes=None,
    )  # fmt: skip
    column = options.period_column if only is not None else None
    wanted = None if groups is None else set(groups)
    first = 0  # row groups are numbered across the files, in this order (`count_row_groups`)
    for fragment in dataset.get_fragments(filter=only):
        reader = pq.ParquetFile(
            fragment.path,
            filesystem=dataset.filesystem,
            read_dictionary=_dictionary_columns(fragment.physical_schema, column),
        )
        numbers = range(first, first + reader.num_row_groups)
        first += reader.num_row_groups
        mine = [n - numbers.start for n in numbers if wanted is None or n in wanted]
        if not mine:
            continue
        # No Arrow thread pool: `_read_ahead` already reads beside the scoring.
        for batch in reader.iter_batches(batch_size=rows, row_groups=mine, use_threads=False):
            yield batch.filter(only) if column in batch.schema.names else batch


def _dictionary_columns(schema: Any, period_column: str | None) -> list[str]:
    """The text columns to read as Arrow dictionaries, pandas categoricals (a handful of
    values each, decoded once per batch instead of once per row): all but the customer ID,
    whose values are all distinct, and the period column the rows are filtered on."""
    import pyarrow as pa

    kept = {normalise_name(ID_COLUMN), *([normalise_name(period_column)] if period_column else [])}
    return [
        field.name
        for field in schema
        if (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
        and normalise_name(field.name) not in kept
    ]


def _dictionary_encoded(table: Any, period_column: str | None) -> Any:
    """`table` with its text columns (`_dictionary_columns`) dictionary-encoded by Arrow."""
    for name in _dictionary_columns(table.schema, period_column):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(i).dictionary_encode())
    return table


def _read_ahead(scan: Iterator[Any], *, shown: str, seconds: float) -> Iterator[Any]:
    """The scan's batches, each read in a daemon thread while the one before is processed
    (Arrow decodes without the GIL). As in `storage_call`: a batch waited for longer than
    `seconds` is abandoned, and failures become the same named errors."""
    import pyarrow as pa

    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)  # one batch waiting, at most
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            with suppress(queue.Full):
                ready.put(item, timeout=0.2)
                return True
        return False

    def read() -> None:
        try:
            for batch in scan:
                if not offer(("batch", batch)):
                    return  # the consumer stopped (a rejected batch): read no further
            offer(("end", None))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            offer(("error", _unreadable(shown, exc)))
        except BaseException as exc:  # re-raised in the consumer's thread
            offer(("error", exc))

    threading.Thread(target=read, name="churn-retrain-scan", daemon=True).start()
    try:
        while True:
            try:
                kind, value = Deadline.after(seconds).get(ready)
            except DeadlineExceeded:
                raise too_slow(shown, Deadline.after(seconds)) from None
            if kind == "end":
                return
            if kind == "error":
                raise storage_error(shown, value) from None
            yield value
    finally:
        stop.set()


def _unreadable(shown: str, exc: Exception) -> SnapshotRejected:
    # Only the exception's type: pyarrow's message can quote a value it could not convert.
    problem = (
        f"cannot be read as Parquet, or its files differ in columns or types ({type(exc).__name__})"
    )
    return SnapshotRejected(f"Snapshot {shown}: {problem}")


def parquet_chunks(
    location: Location,
    *,
    chunk_rows: int,
    limits: ReadLimits,
    groups: Sequence[int] | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """(as read, as typed) frames of `chunk_rows` rows (the last one shorter), in file order.

    The scanner's batches end at row groups: small ones are gathered, large ones cut, so GX's
    cost per call is paid once per chunk whatever the file's layout. With `groups` (positions
    in `count_row_groups`'s order), only those row groups are read, and no rows yield nothing.
    """
    import pyarrow as pa

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    shown, period, column = location.shown, location.period, location.options.period_column
    dataset, selected = _open_dataset(location, limits)
    batches = _row_group_batches(dataset, selected, chunk_rows, groups)

    def typed(table: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        if limits.categories:  # text as categoricals: a few values each, decoded once
            table = _dictionary_encoded(table, column)
        raw = table.to_pandas()
        return raw, check_typed_frame(
            raw, source=shown, period=period, period_column=column, what=WHAT,
            categories=limits.categories,
        )  # fmt: skip

    pending: list[Any] = []
    held = total = 0
    while True:
        batch = storage_call(
            lambda: _next_batch(batches, shown),
            shown=shown,
            deadline=Deadline.after(limits.deadline.seconds),  # per batch
        )
        if batch is not None and batch.num_rows:
            pending.append(batch)
            held += batch.num_rows
        while held >= chunk_rows or (batch is None and held):
            table = pa.Table.from_batches(pending)
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
            total += min(table.num_rows, chunk_rows)
            yield typed(table.slice(0, chunk_rows))
        if batch is None:
            break
    if total == 0 and groups is None:  # the typing's own message for a month without rows
        unusable = storage_call(
            lambda: no_period_rows(
                dataset, selected, period=period, period_column=column, shown=shown
            ),
            shown=shown,
            deadline=Deadline.after(limits.deadline.seconds),
        )
        if unusable is not None:
            raise unusable
        yield typed(dataset.schema.empty_table())


def _open_dataset(location: Location, limits: ReadLimits) -> tuple[Any, Any]:
    """The month's dataset and its period filter, opened within the read's deadline."""
    shown, period = location.shown, location.period
    timeout = limits.deadline.timeout(READ_TIMEOUT_SECONDS)
    fs, path = open_filesystem(location.text, shown=shown, timeout=timeout)
    return storage_call(
        lambda: open_month(
            fs, path, period=period, period_column=location.options.period_column, shown=shown,
            max_bytes=limits.max_bytes,
        ),
        shown=shown,
        deadline=limits.deadline,
    )  # fmt: skip


def _row_group_batches(
    dataset: Any, selected: Any, batch_rows: int, groups: Sequence[int] | None = None
) -> Iterator[Any]:
    """The dataset's record batches in file order, scanned one row group at a time.

    A dataset scanner decodes far ahead of a slow reader whatever its read-ahead settings
    (~0.9 GB of Arrow memory for a 4M-row file while the suite ran); a row group's scanner
    holds that row group only. Partition columns, the filter and the dataset's schema (files
    cast to it, missing columns as nulls) are those of a whole read.
    """
    import pyarrow.dataset as ds

    wanted = None if groups is None else set(groups)
    for position, group in enumerate(row_groups(dataset, selected)):
        if wanted is None or position in wanted:
            scanner = ds.Scanner.from_fragment(
                group, schema=dataset.schema, filter=selected, batch_size=batch_rows,
                batch_readahead=0, fragment_readahead=0,
            )  # fmt: skip
            yield from scanner.to_batches()


def _next_batch(batches: Iterator[Any], shown: str) -> Any:
    import pyarrow as pa

    try:
        return next(batches, None)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise not_parquet(shown, exc) from None


def parquet_rows(
    location: Location,
    positions: npt.NDArray[np.intp],
    *,
    limits: ReadLimits,
    groups: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The rows at ascending `positions` of the month (of its row groups `groups`), in the row
    order `parquet_chunks` reads, typed by `check_typed_frame` as a chunk's rows are: each
    batch is decoded and only the rows asked for are kept and typed, so taking a sample costs
    a read of the month, not its typing. Stops at the last row asked for."""
    import pyarrow as pa

    shown, period, column = location.shown, location.period, location.options.period_column
    dataset, selected = _open_dataset(location, limits)
    batches = _row_group_batches(dataset, selected, _TAKE_BATCH_ROWS, groups)
    taken, first = [], 0
    while first <= (positions[-1] if positions.size else -1):
        batch = storage_call(
            lambda: _next_batch(batches, shown),
            shown=shown,
            deadline=Deadline.after(limits.deadline.seconds),  # per batch
        )
        if batch is None:
            break
        end = first + batch.num_rows
        lo, hi = np.searchsorted(positions, [first, end])
        if hi > lo:
            taken.append(batch.take(pa.array(positions[lo:hi] - first)))
        first = end
    table = pa.Table.from_batches(taken, schema=dataset.schema)
    if table.num_rows != positions.size:
        raise ValueError(f"{shown} holds {first:,} rows: not all of the {positions.size:,} asked")
    return check_typed_frame(
        table.to_pandas(), source=shown, period=period, period_column=column, what=WHAT
    )


#: Rows decoded at a time while taking rows: one row group's batches, a few MB of Arrow.
_TAKE_BATCH_ROWS = 250_000
