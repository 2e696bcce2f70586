"""Reading a Parquet base batch by batch: never whole, in the order a whole read has, each
batch typed as a whole read types it and read in a thread while the one before is scored."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import suppress
from itertools import chain
from typing import Any

import pandas as pd

from tasks.data.request import SourceOptions
from tasks.data.schema import ID_COLUMN
from tasks.data.storage import open_filesystem, storage_error, too_slow
from tasks.errors import SnapshotRejected
from tasks.gate.load import READ_TIMEOUT_SECONDS
from tasks.gate.typed import check_typed_frame
from tasks.messages import normalise_name


def typed_batches(
    location: str,
    options: SourceOptions,
    period: str,
    *,
    shown: str,
    batch_rows: int,
    deadline: float,
    groups: Sequence[int] | None = None,
) -> Generator[tuple[pd.DataFrame, str], None, None]:
    """(frame, which rows) per batch of about `batch_rows`, typed by `check_typed_frame`.

    The same files and period filter as the whole-file read (`read_parquet_frame`), in the
    same order. Batches of a file with small row groups are gathered up to `batch_rows`.
    """
    fs, path = open_filesystem(location, shown=shown, timeout=min(READ_TIMEOUT_SECONDS, deadline))
    scan = _scan(fs, path, options, period, shown=shown, rows=batch_rows, groups=groups)
    # A partition's rows are numbered within its row groups: say which they are.
    label = (
        shown if groups is None else f"{shown} row group {', '.join(str(g + 1) for g in groups)}"
    )
    pending: list[Any] = []  # emptied by `_typed`: no Arrow copy lives beside its frame
    first = rows = 0
    for batch in chain(_read_ahead(scan, shown=shown, deadline=deadline), [None]):
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
        raise SnapshotRejected(f"Snapshot {shown}: the Parquet data has no rows for {period}")


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
        what="Parquet data", categories=True,
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

    from tasks.data.columnar import open_month

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


def _read_ahead(scan: Iterator[Any], *, shown: str, deadline: float) -> Iterator[Any]:
    """The scan's batches, each read in a daemon thread while the one before is processed
    (Arrow decodes without the GIL). As in `storage_call`: a batch waited for longer than
    `deadline` seconds is abandoned, and failures become the same named errors."""
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
                kind, value = ready.get(timeout=deadline)
            except queue.Empty:
                raise too_slow(shown, deadline) from None
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
