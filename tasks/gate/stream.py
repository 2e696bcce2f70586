"""Read a Parquet month chunk by chunk (a file or folder, local or fsspec), typed as the loader
types it, and validate each chunk: the month's report in the memory of one chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.data.request import (
    GENERATED,
    SourceOptions,
    file_format,
    is_fsspec_url,
    is_sql_url,
    is_url,
    resolve_source,
)
from tasks.gate.chunk_suite import DEFAULT_CHUNK_ROWS, ChunkResult
from tasks.gate.chunks import validate_chunk
from tasks.gate.combine import combine
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
)
from tasks.settings import Settings, redact_uri


def parquet_location(source: str, period: str, options: SourceOptions) -> str | None:
    """Where to read with `validate_parquet` when `source` is Parquet that pyarrow reads (a
    local or fsspec file or folder); None when it is loaded whole (`load_snapshot`): CSV,
    Parquet over http(s), databases, generated rows, locations with a `{secret:NAME}`."""
    if source == GENERATED or "{secret:" in source or options.table or options.query:
        return None
    location = resolve_source(source, period)
    if is_sql_url(location) or is_url(location):
        return None
    local_dir = not is_fsspec_url(location) and Path(location).is_dir()
    return location if file_format(location, options, is_dir=local_dir) == "parquet" else None


def validate_parquet(
    location: str,
    *,
    period: str,
    options: SourceOptions | None = None,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_bytes: int | None = None,
    deadline_seconds: float | None = None,
    on_chunk: Callable[[pd.DataFrame], None] | None = None,
) -> ValidationReport:
    """Validate the month's Parquet file or folder chunk by chunk; the report of a whole read.

    The dataset, period filter, size limit (`max_bytes`, default the setting) and read errors
    are those of `load_snapshot`; each chunk of `chunk_rows` is typed by `check_typed_frame`
    (a problem there raises `SnapshotRejected`, as loading does), validated, then handed to
    `on_chunk` (a digest, drift inputs) and dropped. Each batch read waits at most
    `deadline_seconds` (default the download deadline). Bad data is in the report, not raised.
    """
    chunks = validated_chunks(
        location, period=period, options=options, suite_path=suite_path,
        for_scoring=for_scoring, chunk_rows=chunk_rows, max_bytes=max_bytes,
        deadline_seconds=deadline_seconds, on_chunk=on_chunk,
    )  # fmt: skip
    return combine(
        chunks, source=redact_uri(location), suite_path=suite_path, for_scoring=for_scoring
    )


def validated_chunks(
    location: str,
    *,
    period: str,
    options: SourceOptions | None,
    suite_path: Path,
    for_scoring: bool,
    chunk_rows: int,
    max_bytes: int | None,
    deadline_seconds: float | None,
    on_chunk: Callable[[pd.DataFrame], None] | None,
    groups: Sequence[int] | None = None,
) -> list[ChunkResult]:
    """`validate_parquet`'s chunk results, of the row groups `groups` only if given."""

    options = options or SourceOptions()
    shown = redact_uri(location)
    if max_bytes is None or deadline_seconds is None:
        settings = Settings()
        max_bytes = settings.max_snapshot_bytes if max_bytes is None else max_bytes
        deadline_seconds = deadline_seconds or settings.download_timeout_seconds
    chunks = []
    for raw, typed in _parquet_chunks(
        location, options, period, shown=shown, chunk_rows=chunk_rows, max_bytes=max_bytes,
        deadline=deadline_seconds, groups=groups,
    ):  # fmt: skip
        chunks.append(
            validate_chunk(typed, raw=raw, suite_path=suite_path, for_scoring=for_scoring)
        )
        del raw
        if on_chunk is not None:
            on_chunk(typed)
        del typed
    return chunks


def _parquet_chunks(
    location: str,
    options: SourceOptions,
    period: str,
    *,
    shown: str,
    chunk_rows: int,
    max_bytes: int,
    deadline: float,
    groups: Sequence[int] | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """(as read, as typed) frames of `chunk_rows` rows (the last one shorter), in file order.

    The scanner's batches end at row groups: small ones are gathered, large ones cut, so GX's
    cost per call is paid once per chunk whatever the file's layout. With `groups` (positions
    in `count_row_groups`'s order), only those row groups are read, and no rows yield nothing.
    """
    import pyarrow as pa

    from tasks.data.storage import open_filesystem, storage_call
    from tasks.gate.load import READ_TIMEOUT_SECONDS
    from tasks.gate.typed import check_typed_frame

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    timeout = min(READ_TIMEOUT_SECONDS, deadline)
    fs, path = open_filesystem(location, shown=shown, timeout=timeout)
    dataset, selected = storage_call(
        lambda: open_dataset(fs, path, options, period, shown=shown, max_bytes=max_bytes),
        shown=shown,
        deadline=deadline,
    )
    column = options.period_column
    batches = _row_group_batches(dataset, selected, chunk_rows, groups)

    def typed(table: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        raw = table.to_pandas()
        return raw, check_typed_frame(
            raw, source=shown, period=period, period_column=column, what="Parquet data"
        )

    pending: list[Any] = []
    held = total = 0
    while True:
        batch = storage_call(lambda: _next_batch(batches, shown), shown=shown, deadline=deadline)
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
        yield typed(dataset.schema.empty_table())


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


def row_groups(dataset: Any, selected: Any) -> Iterator[Any]:
    """Every row group of the month's files, in file order (the partitions of a cluster)."""
    for fragment in dataset.get_fragments(filter=selected):
        yield from fragment.split_by_row_group()


def open_dataset(
    fs: Any, path: str, options: SourceOptions, period: str, *, shown: str, max_bytes: int
) -> tuple[Any, Any]:
    """The dataset and period filter of `read_parquet_frame`, with its size limit and messages."""
    from tasks.data.columnar import open_month

    return open_month(
        fs, path, period=period, period_column=options.period_column, shown=shown,
        max_bytes=max_bytes,
    )  # fmt: skip


def _next_batch(batches: Iterator[Any], shown: str) -> Any:
    import pyarrow as pa

    from tasks.data.columnar import _not_parquet

    try:
        return next(batches, None)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _not_parquet(shown, exc) from None
