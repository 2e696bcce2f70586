"""The gate's pass over a Parquet month: the report, the digest `load_snapshot` would give
and the drift columns, in one pass here or one task per row group on a cluster."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from tasks.data import schema
from tasks.data.request import SourceOptions
from tasks.data.source import ReadLimits, locate_month, source_for
from tasks.gate.chunk_suite import DEFAULT_CHUNK_ROWS, ChunkResult
from tasks.gate.combine import combine
from tasks.gate.stream import validated_chunks
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
    raise_if_rejected,
)
from tasks.settings import redact_uri
from tasks.steps import retried_step


@dataclass(frozen=True)
class StreamedMonth:
    """A Parquet month that passed the suite, read once: what the gate needs besides rows."""

    validation: ValidationReport
    source: str
    digest: str
    #: The drift check's columns (numbers as float64, the rest categorical), or None.
    features: pd.DataFrame | None

    @property
    def rows(self) -> int:
        return self.validation.rows


@dataclass(frozen=True)
class MonthRead:
    """Which Parquet month the gate reads and how: everything but the rows."""

    location: str
    period: str
    options: SourceOptions | None = None
    suite_path: Path = DEFAULT_SUITE_PATH
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    max_bytes: int | None = None
    #: Keep the drift check's columns (~40 bytes a row instead of the whole frame's ~1 kB).
    with_features: bool = True


@retried_step("validate-parquet", delay_seconds=5)
def validate_streamed(month: MonthRead) -> StreamedMonth:
    """The gate's validation of a Parquet month in one pass; `SnapshotRejected` if it fails.

    Besides the report: the digest `load_snapshot` gives the same rows, and (`with_features`)
    the drift check's columns.
    """
    part = read_month_part(month)
    return finish_month([part], source=redact_uri(month.location), suite_path=month.suite_path)


@dataclass
class MonthPart:
    """What validating some of a month's row groups found: small, picklable, no data values
    but the digest's row hashes and IDs and (if asked) the drift check's columns."""

    chunks: list[ChunkResult]
    digest: MonthDigest
    features: DriftFeatures | None


def read_month_part(month: MonthRead, groups: Sequence[int] | None = None) -> MonthPart:
    """Read, type and validate the month's row groups (`groups`, default all) chunk by chunk."""
    digest = MonthDigest()
    features = DriftFeatures() if month.with_features else None

    def keep(frame: pd.DataFrame) -> None:
        digest.add(frame)
        if features is not None:
            features.add(frame)

    chunks = validated_chunks(
        locate_month(month.location, month.period, month.options),
        suite_path=month.suite_path,
        for_scoring=False,
        chunk_rows=month.chunk_rows,
        limits=ReadLimits.from_settings(month.max_bytes),
        on_chunk=keep,
        groups=groups,
    )
    return MonthPart(chunks, digest, features)


def finish_month(
    parts: Sequence[MonthPart], *, source: str, suite_path: Path = DEFAULT_SUITE_PATH
) -> StreamedMonth:
    """The month from its parts, in row-group order; `SnapshotRejected` if the suite fails."""
    report = raise_if_rejected(
        combine([c for p in parts for c in p.chunks], source=source, suite_path=suite_path)
    )
    digest = MonthDigest.merged([p.digest for p in parts])
    pieces = [p.features for p in parts if p.features is not None]
    features = DriftFeatures.merged(pieces).frame() if pieces else None
    return StreamedMonth(report, report.source, digest.digest(), features)


def count_row_groups(
    location: str,
    *,
    period: str,
    options: SourceOptions | None = None,
    max_bytes: int | None = None,
) -> int:
    """How many row groups the month's Parquet files hold: the partitions a cluster validates."""
    month = locate_month(location, period, options)
    return source_for(month).row_groups(month, ReadLimits.from_settings(max_bytes))


@retried_step("validate-partition", delay_seconds=5)
def validate_partition(month: MonthRead, groups: Sequence[int]) -> MonthPart:
    """`read_month_part` of some row groups, as a task a cluster's worker runs from shared
    storage (the path or URL must mean the same file there)."""
    from tasks.logs import keep_expected_failures_short

    keep_expected_failures_short()  # in the worker's process too: a rejection, no traceback
    return read_month_part(month, groups)


def validate_month(month: MonthRead, *, partitioned: bool = False) -> StreamedMonth:
    """`validate_streamed`, or (`partitioned`) one `validate_partition` task per row group,
    submitted to the flow's task runner (a Dask cluster) and combined here: the same report,
    digest and drift columns as the single pass, in row-group order."""
    month = replace(month, options=month.options or SourceOptions())
    groups = count_row_groups(
        month.location, period=month.period, options=month.options, max_bytes=month.max_bytes
    )
    if not partitioned or groups < 2:
        return cast(StreamedMonth, validate_streamed(month))
    futures = [validate_partition.submit(month, [g]) for g in range(groups)]
    parts = [future.result() for future in futures]
    if not any(p.chunks for p in parts):  # no rows for the period: the single pass's message
        return cast(StreamedMonth, validate_streamed(month))
    return finish_month(parts, source=redact_uri(month.location), suite_path=month.suite_path)


class MonthDigest:
    """`digest_frame` of the month in customer order (as `load_snapshot` sorts it), from its
    chunks: the row hashes and IDs are kept (~25 bytes a row), the rows are not."""

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._ids: list[Any] = []
        self._columns: list[str] = []

    def add(self, frame: pd.DataFrame) -> None:
        """Take one typed chunk's row hashes and customer IDs."""
        import pyarrow as pa

        ordered = frame[sorted(frame.columns)]
        self._columns = [str(c) for c in ordered.columns]
        self._hashes.append(pd.util.hash_pandas_object(ordered, index=False).to_numpy())
        self._ids.append(pa.array(frame[schema.ID_COLUMN], type=pa.string(), from_pandas=True))

    @classmethod
    def merged(cls, parts: Iterable[MonthDigest]) -> MonthDigest:
        """One digest of the parts' chunks, in the parts' order (the month's row order)."""
        whole = cls()
        for part in parts:
            whole._hashes.extend(part._hashes)
            whole._ids.extend(part._ids)
            whole._columns = part._columns or whole._columns
        return whole

    def digest(self) -> str:
        """The digest of every chunk added, rows in customer order (a stable sort by ID)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        hashes = np.concatenate(self._hashes) if self._hashes else np.array([], dtype=np.uint64)
        ids = pa.chunked_array(self._ids, type=pa.string())
        # Stable, nulls last (the default): as load_snapshot orders the rows.
        order = pc.sort_indices(ids).to_numpy()
        digest = hashlib.sha256(",".join(self._columns).encode())
        digest.update(hashes[order].tobytes())
        return f"sha256:{digest.hexdigest()[:32]}"


class DriftFeatures:
    """The columns the drift check reads, kept compact across chunks: numbers as float64
    (what `compare_with_profile` makes of them), the others as categoricals (1 byte a row)."""

    def __init__(self) -> None:
        self._numeric: dict[str, list[np.ndarray]] = {}
        self._categorical: dict[str, list[pd.Categorical]] = {}

    def add(self, frame: pd.DataFrame) -> None:
        """Take one typed chunk's feature columns."""
        from tasks.gate.drift import CATEGORICAL_FEATURES, NUMERIC_FEATURES

        for column in NUMERIC_FEATURES:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            self._numeric.setdefault(column, []).append(values)
        for column in CATEGORICAL_FEATURES:
            self._categorical.setdefault(column, []).append(pd.Categorical(frame[column]))

    @classmethod
    def merged(cls, parts: Iterable[DriftFeatures]) -> DriftFeatures:
        """The parts' columns as one, in the parts' order."""
        whole = cls()
        for part in parts:
            for name, values in part._numeric.items():
                whole._numeric.setdefault(name, []).extend(values)
            for name, categories in part._categorical.items():
                whole._categorical.setdefault(name, []).extend(categories)
        return whole

    def frame(self) -> pd.DataFrame:
        """One frame of every chunk added, in the order they came."""
        from pandas.api.types import union_categoricals

        columns: dict[str, Any] = {
            name: np.concatenate(parts) for name, parts in self._numeric.items()
        }
        columns.update(
            {name: union_categoricals(parts) for name, parts in self._categorical.items()}
        )
        return pd.DataFrame(columns)
