"""Parquet months (one file or a folder of files) with pyarrow, without a detour via text: read
whole, or streamed a part at a time (tasks/data/parquet_stream.py).

A folder may be partitioned Hive-style (`period=2026-03/part-0.parquet`): when its partitions
carry the period column, only that period's files are read. The compressed size counts against
the snapshot limit (a Parquet month is several times smaller than its CSV). Over http(s) the
file's bytes are fetched and read whole.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from tasks.data.fetch import READ_TIMEOUT_SECONDS, fetch_bytes, open_filesystem, storage_call
from tasks.data.parquet_files import WHAT, no_period_rows, not_parquet, open_month, row_groups
from tasks.data.parquet_stream import parquet_chunks, parquet_rows, typed_batches
from tasks.data.schema import ID_COLUMN
from tasks.data.source import Location, ReadLimits, Source
from tasks.data.typed import check_typed_frame
from tasks.errors import SnapshotRejected
from tasks.runtime.deadline import Deadline


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
        return parquet_chunks(location, chunk_rows=chunk_rows, limits=limits, groups=groups)

    def take(
        self,
        location: Location,
        positions: npt.NDArray[np.intp],
        *,
        limits: ReadLimits,
        groups: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        return parquet_rows(location, positions, limits=limits, groups=groups)

    def batches(
        self,
        location: Location,
        *,
        batch_rows: int,
        deadline: Deadline,
        groups: Sequence[int] | None = None,
    ) -> Generator[tuple[pd.DataFrame, str], None, None]:
        return typed_batches(location, batch_rows=batch_rows, deadline=deadline, groups=groups)

    def row_groups(self, location: Location, limits: ReadLimits) -> int:
        fs, path = open_filesystem(
            location.text,
            shown=location.shown,
            timeout=limits.deadline.timeout(READ_TIMEOUT_SECONDS),
        )

        def count() -> int:
            dataset, selected = open_month(
                fs,
                path,
                period=location.period,
                period_column=location.options.period_column,
                shown=location.shown,
                max_bytes=limits.max_bytes,
            )
            return sum(1 for _ in row_groups(dataset, selected))

        return int(storage_call(count, shown=location.shown, deadline=limits.deadline))


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
        frame = pd.DataFrame(columns)
        if frame.empty and (
            unusable := no_period_rows(
                dataset, filtered, period=period, period_column=period_column, shown=shown
            )
        ):
            raise unusable
        return frame

    return storage_call(read, shown=shown, deadline=limits.deadline)
