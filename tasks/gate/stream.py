"""Validate a Parquet month chunk by chunk (a file or folder, local or fsspec), each chunk read and
typed by its source (tasks/data/parquet_stream.py): the month's report in the memory of one chunk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from tasks.data.request import SnapshotRequest, SourceOptions
from tasks.data.source import Location, ReadLimits, locate_month, source_for, streamed
from tasks.gate.chunk_suite import DEFAULT_CHUNK_ROWS, ChunkResult
from tasks.gate.chunks import validate_chunk
from tasks.gate.combine import combine
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
)


def parquet_location(source: str, period: str, options: SourceOptions) -> str | None:
    """Where to read with `validate_parquet` when `source` is a month its source streams (a
    local or fsspec Parquet file or folder); None when it is loaded whole (`load_snapshot`):
    CSV, Parquet over http(s), databases, generated rows, locations with a `{secret:NAME}`."""
    found = streamed(SnapshotRequest(source, period, options=options))
    return None if found is None else found[1].text


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
    month = locate_month(location, period, options)
    chunks = validated_chunks(
        month, suite_path=suite_path, for_scoring=for_scoring, chunk_rows=chunk_rows,
        limits=ReadLimits.from_settings(max_bytes, deadline_seconds), on_chunk=on_chunk,
    )  # fmt: skip
    return combine(chunks, source=month.shown, suite_path=suite_path, for_scoring=for_scoring)


def validated_chunks(
    location: Location,
    *,
    suite_path: Path,
    for_scoring: bool,
    chunk_rows: int,
    limits: ReadLimits,
    on_chunk: Callable[[pd.DataFrame], None] | None,
    groups: Sequence[int] | None = None,
) -> list[ChunkResult]:
    """`validate_parquet`'s chunk results, of the row groups `groups` only if given."""
    chunks = []
    source = source_for(location)
    for raw, typed in source.chunks(location, chunk_rows=chunk_rows, limits=limits, groups=groups):
        chunks.append(
            validate_chunk(typed, raw=raw, suite_path=suite_path, for_scoring=for_scoring)
        )
        del raw
        if on_chunk is not None:
            on_chunk(typed)
        del typed
    return chunks
