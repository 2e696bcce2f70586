"""The month's Parquet files as a pyarrow dataset: a file or a folder, the period's Hive partition
selected, the size limit checked, pyarrow's errors named without quoting data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd

from tasks.data.period import describe_kind, month_bounds, no_rows
from tasks.errors import SnapshotRejected

#: What the typed guards call this data in their messages.
WHAT = "Parquet data"
#: Rows of the period column read to say what it holds, when it selected none.
_SAMPLE_ROWS = 1000


def open_month(
    fs: Any, path: str, *, period: str, period_column: str, shown: str, max_bytes: int | None
) -> tuple[Any, Any]:
    """The Parquet file or folder at `path` as a pyarrow dataset, and the filter that selects
    the period's Hive partition (None when the period is not a partition).

    `SnapshotRejected` if it is not Parquet, holds no files, or (unless `max_bytes` is None,
    a read that streams) the period's files are larger than `max_bytes`.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise not_parquet(shown, exc) from None
    files = dataset.files
    if not files:
        raise SnapshotRejected(f"Snapshot {shown}: folder holds no Parquet files")
    filtered: Any = None
    if period_column in dataset.schema.names and _is_partition(dataset, period_column):
        filtered = period_filter(dataset.schema.field(period_column), period)
        if filtered is not None:
            files = [f for f in files if f"{period_column}={period}" in f]
    if max_bytes is not None:
        size = sum(fs.size(f) for f in files)
        if size > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: Parquet files are {size:,} bytes, over the "
                f"{max_bytes:,}-byte limit"
            )
    return dataset, filtered


def period_filter(field: Any, period: str) -> Any | None:
    """The pyarrow filter of the period's rows (as `in_period` selects them): as text, the
    month itself or an ISO date or time in it; a date or a time (a zoned one in its zone)
    within the month. None for a column of another type: every row is read, and the typed
    guards reject it, saying what the column holds."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    column, kind = ds.field(field.name), field.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        dated = pc.match_substring_regex(column, pattern=rf"^{re.escape(period)}-\d\d([T ]|$)")
        return (column == period) | dated
    start, end = month_bounds(period)
    if pa.types.is_date(kind):
        first, after = pa.scalar(start, type=kind), pa.scalar(end, type=kind)
    elif pa.types.is_timestamp(kind):
        first, after = (
            pa.scalar(pd.Timestamp(day, tz=kind.tz).to_pydatetime(), type=kind)
            for day in (start, end)
        )
    else:
        return None
    return (column >= first) & (column < after)


def no_period_rows(
    dataset: Any, filtered: Any, *, period: str, period_column: str, shown: str
) -> SnapshotRejected | None:
    """For a period filter that selected no row: the rejection saying what the period column
    holds when it is neither months nor dates (its kind, never its cells), else None (it holds
    other months: the typed guards' own "no rows" says it)."""
    if filtered is None or period_column not in dataset.schema.names:
        return None
    sample = dataset.head(_SAMPLE_ROWS, columns=[period_column]).column(0).to_pandas()
    kind = describe_kind(sample)
    if kind is None:
        return None
    return SnapshotRejected(f"Snapshot {shown}: {no_rows(WHAT, period, period_column, kind)}")


def _is_partition(dataset: Any, column: str) -> bool:
    partitioning = getattr(dataset, "partitioning", None)
    schema = getattr(partitioning, "schema", None)
    return schema is not None and column in schema.names


def not_parquet(shown: str, exc: Exception) -> SnapshotRejected:
    # pyarrow's message describes the file's structure (magic bytes, schema), not its values.
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "magic bytes" in reason or "Parquet magic" in reason:
        reason = "not a Parquet file (no Parquet footer)"
    elif "Unable to merge" in reason or "schema" in reason.lower():
        reason = "the files of the folder have different columns or types"
    else:
        reason = f"cannot be read as Parquet ({type(exc).__name__})"
    return SnapshotRejected(f"Snapshot {shown}: {reason}")


def row_groups(dataset: Any, selected: Any) -> Iterator[Any]:
    """Every row group of the month's files, in file order (the partitions of a cluster)."""
    for fragment in dataset.get_fragments(filter=selected):
        yield from fragment.split_by_row_group()
