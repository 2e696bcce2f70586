"""Read a Parquet month (one file or a folder of files) with pyarrow, without a detour via text.

A folder may be partitioned Hive-style (`period=2026-03/part-0.parquet`): when its partitions
carry the period column, only that period's files are read. The compressed size counts against
the snapshot limit (a Parquet month is several times smaller than its CSV).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.data.storage import open_filesystem, storage_call
from tasks.errors import SnapshotRejected


def read_parquet_frame(
    location: str,
    *,
    period: str,
    period_column: str,
    shown: str,
    timeout: float,
    deadline: float,
    max_bytes: int,
) -> pd.DataFrame:
    """The month's rows of a Parquet file or folder, as pyarrow typed them."""
    fs, path = open_filesystem(location, shown=shown, timeout=timeout)

    def read() -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.dataset as ds

        try:
            dataset = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
        except pa.ArrowInvalid as exc:
            raise _not_parquet(shown, exc) from None
        files = dataset.files
        if not files:
            raise SnapshotRejected(f"Snapshot {shown}: folder holds no Parquet files")
        filtered: Any = None
        if period_column in dataset.schema.names and _is_partition(dataset, period_column):
            filtered = ds.field(period_column) == period
            files = [f for f in files if f"{period_column}={period}" in f]
        size = sum(fs.size(f) for f in files)
        if size > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: Parquet files are {size:,} bytes, over the "
                f"{max_bytes:,}-byte limit"
            )
        try:
            table = dataset.to_table(filter=filtered)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise _not_parquet(shown, exc) from None
        return table.to_pandas()

    return storage_call(read, shown=shown, deadline=deadline)


def _is_partition(dataset: Any, column: str) -> bool:
    partitioning = getattr(dataset, "partitioning", None)
    schema = getattr(partitioning, "schema", None)
    return schema is not None and column in schema.names


def _not_parquet(shown: str, exc: Exception) -> SnapshotRejected:
    # pyarrow's message describes the file's structure (magic bytes, schema), not its values.
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "magic bytes" in reason or "Parquet magic" in reason:
        reason = "not a Parquet file (no Parquet footer)"
    elif "Unable to merge" in reason or "schema" in reason.lower():
        reason = "the files of the folder have different columns or types"
    else:
        reason = f"cannot be read as Parquet ({type(exc).__name__})"
    return SnapshotRejected(f"Snapshot {shown}: {reason}")
