"""The month's Parquet files as a pyarrow dataset: a file or a folder, the period's Hive partition
selected, the size limit checked, pyarrow's errors named without quoting data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.errors import SnapshotRejected

#: What the typed guards call this data in their messages.
WHAT = "Parquet data"


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
        filtered = ds.field(period_column) == period
        files = [f for f in files if f"{period_column}={period}" in f]
    if max_bytes is not None:
        size = sum(fs.size(f) for f in files)
        if size > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: Parquet files are {size:,} bytes, over the "
                f"{max_bytes:,}-byte limit"
            )
    return dataset, filtered


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
