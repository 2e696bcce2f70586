"""Parquet months (one file or a folder of files) with pyarrow, without a detour via text: read
whole, or streamed a part at a time (tasks/data/parquet_stream.py).

A folder may be partitioned Hive-style (`period=2026-03/part-0.parquet`): when its partitions
carry the period column, only that period's files are read. The compressed size counts against
the snapshot limit (a Parquet month is several times smaller than its CSV). Over http(s) the
file's bytes are fetched and read whole.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pandas as pd

from tasks.data.fetch import READ_TIMEOUT_SECONDS, fetch_bytes, open_filesystem, storage_call
from tasks.data.schema import ID_COLUMN
from tasks.data.source import Location, ReadLimits, Source
from tasks.data.typed import check_typed_frame
from tasks.errors import SnapshotRejected
from tasks.runtime.deadline import Deadline

WHAT = "Parquet data"


class ParquetSource(Source):
    """`.parquet` files and folders (Hive partitions too): local, s3://, gs://, abfs://, and
    single files over http(s)."""

    streams = True

    def can_stream(self, location: Location) -> bool:
        return location.scheme not in ("http", "https")

    def read(self, location: Location, limits: ReadLimits) -> pd.DataFrame:
        options = location.options
        if not self.can_stream(location):
            payload = fetch_bytes(
                location.text, shown=location.shown, deadline=limits.deadline,
                max_bytes=limits.max_bytes,
            )  # fmt: skip
            frame = _parquet_bytes(payload, shown=location.shown)
            categories = False
        else:
            frame = read_parquet_frame(location, limits)
            categories = limits.categories
        return check_typed_frame(
            frame, source=location.shown, period=location.period,
            period_column=options.period_column, what=WHAT, categories=categories,
        )  # fmt: skip

    def chunks(
        self,
        location: Location,
        *,
        chunk_rows: int,
        limits: ReadLimits,
        groups: Sequence[int] | None = None,
    ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        from tasks.data.parquet_stream import parquet_chunks

        return parquet_chunks(location, chunk_rows=chunk_rows, limits=limits, groups=groups)

    def batches(
        self,
        location: Location,
        *,
        batch_rows: int,
        deadline: Deadline,
        groups: Sequence[int] | None = None,
    ) -> Generator[tuple[pd.DataFrame, str], None, None]:
        from tasks.data.parquet_stream import typed_batches

        return typed_batches(location, batch_rows=batch_rows, deadline=deadline, groups=groups)

    def row_groups(self, location: Location, limits: ReadLimits) -> int:
        fs, path = open_filesystem(
            location.text,
            shown=location.shown,
            timeout=limits.deadline.timeout(READ_TIMEOUT_SECONDS),
        )

        def count() -> int:
            dataset, selected = open_month(
                fs, path, period=location.period, period_column=location.options.period_column,
                shown=location.shown, max_bytes=limits.max_bytes,
            )  # fmt: skip
            return sum(1 for _ in row_groups(dataset, selected))

        return int(storage_call(count, shown=location.shown, deadline=limits.deadline))


def row_groups(dataset: Any, selected: Any) -> Iterator[Any]:
    """Every row group of the month's files, in file order (the partitions of a cluster)."""
    for fragment in dataset.get_fragments(filter=selected):
        yield from fragment.split_by_row_group()


def _parquet_bytes(payload: bytes, *, shown: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(payload)).to_pandas()
    except (pa.ArrowInvalid, OSError):
        raise SnapshotRejected(f"Snapshot {shown}: not a Parquet file") from None


def read_parquet_frame(location: Location, limits: ReadLimits) -> pd.DataFrame:
    """The month's rows of a Parquet file or folder, as pyarrow typed them."""
    shown, period = location.shown, location.period
    period_column, max_bytes = location.options.period_column, limits.max_bytes
    timeout = limits.deadline.timeout(READ_TIMEOUT_SECONDS)
    fs, path = open_filesystem(location.text, shown=shown, timeout=timeout)

    def read() -> pd.DataFrame:
        import pyarrow as pa

        dataset, filtered = open_month(
            fs, path, period=period, period_column=period_column, shown=shown,
            max_bytes=max_bytes,
        )  # fmt: skip
        # A frame written by pandas with its index keeps it as a column (`__index_level_0__`):
        # a whole read makes it the index again, a read by column must leave it out itself.
        metadata = dataset.schema.pandas_metadata or {}
        stored_index = {c for c in metadata.get("index_columns", []) if isinstance(c, str)}
        names = [n for n in dataset.schema.names if n not in stored_index]
        try:
            if len(set(names)) < len(names):  # the typed guards name them; read them as they are
                return dataset.to_table(filter=filtered).to_pandas()
            # One column at a time, text as categories: Arrow holds one column while pandas
            # holds the month, and each distinct string once (10M rows read at once as objects
            # peaked at 5.7 GB). The typed guards turn the categories into plain objects. Not
            # the customer ID: every value is distinct, so categories would only cost time.
            columns = {
                name: dataset.to_table(columns=[name], filter=filtered)
                .column(0)
                .to_pandas(strings_to_categorical=name != ID_COLUMN)
                for name in names
            }
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise not_parquet(shown, exc) from None
        return pd.DataFrame(columns)

    return storage_call(read, shown=shown, deadline=limits.deadline)


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
