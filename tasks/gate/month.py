"""The gate's pass over a Parquet month: the report, the digest `load_snapshot` would give
and the drift columns, in one pass here or one task per row group on a cluster."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from tasks.data import schema
from tasks.data.request import SourceOptions
from tasks.data.source import ReadLimits, locate_month, source_for
from tasks.gate.chunk_suite import DEFAULT_CHUNK_ROWS, ChunkResult
from tasks.gate.combine import combine, month_dtypes
from tasks.gate.drift import DriftCounts, ReferenceProfile
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
    #: What a retrain splits the month by (`with_labels`), else None.
    keys: MonthKeys | None = None
    #: The drift check's counts against `MonthRead.profile`, when one was given.
    drift: DriftCounts | None = None

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
    #: Count the drift check's bins against this profile instead (a few hundred integers).
    profile: ReferenceProfile | None = None
    #: Keep whether each row churned (1 byte a row), for a retrain's split.
    with_labels: bool = False
    #: Read text as categoricals (as a loaded month's): the same report, less time.
    categories: bool = False


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
    drift: DriftCounts | None = None
    labels: list[np.ndarray] | None = None


def read_month_part(month: MonthRead, groups: Sequence[int] | None = None) -> MonthPart:
    """Read, type and validate the month's row groups (`groups`, default all) chunk by chunk."""
    digest = MonthDigest()
    features = DriftFeatures() if month.with_features and month.profile is None else None
    drift = DriftCounts(month.profile) if month.profile is not None else None
    labels: list[np.ndarray] | None = [] if month.with_labels else None

    def keep(frame: pd.DataFrame) -> None:
        digest.add(frame)
        if features is not None:
            features.add(frame)
        if drift is not None:
            drift.add(frame)
        if labels is not None:
            labels.append(churned(frame[schema.TARGET]))

    chunks = validated_chunks(
        locate_month(month.location, month.period, month.options),
        suite_path=month.suite_path,
        for_scoring=False,
        chunk_rows=month.chunk_rows,
        limits=replace(ReadLimits.from_settings(month.max_bytes), categories=month.categories),
        on_chunk=keep,
        groups=groups,
    )
    return MonthPart(chunks, digest, features, drift, labels)


def finish_month(
    parts: Sequence[MonthPart], *, source: str, suite_path: Path = DEFAULT_SUITE_PATH
) -> StreamedMonth:
    """The month from its parts, in row-group order; `SnapshotRejected` if the suite fails."""
    report = raise_if_rejected(
        combine([c for p in parts for c in p.chunks], source=source, suite_path=suite_path)
    )
    for chunk in (c for p in parts for c in p.chunks):
        chunk.id_hashes.clear()  # the month's uniqueness is judged: 8 bytes a row less
    digest = MonthDigest.merged([p.digest for p in parts])
    pieces = [p.features for p in parts if p.features is not None]
    features = DriftFeatures.merged(pieces).frame() if pieces else None
    counts = [p.drift for p in parts if p.drift is not None]
    drift = DriftCounts.merged(counts) if counts else None
    if all(p.labels is None for p in parts):
        return StreamedMonth(report, report.source, digest.digest(), features, drift=drift)
    text, order = digest.ordered()
    labels = [flags for p in parts for flags in p.labels or []]
    keys = MonthKeys(
        order=order,
        churned=np.concatenate(labels) if labels else np.zeros(0, dtype=bool),
        part_rows=tuple(sum(c.rows for c in p.chunks) for p in parts),
        dtypes=month_dtypes([c for p in parts for c in p.chunks]),
        ids=digest.ids,
    )
    return StreamedMonth(report, report.source, text, features, keys=keys, drift=drift)


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


#: Row hashes put in customer order per digest update: 8 MB at a time, not a copy of them all.
_DIGEST_ROWS = 1_000_000


@dataclass(frozen=True)
class MonthKeys:
    """What a retrain splits a streamed month by, without its rows: ~25 bytes a customer (its
    ID, its position in customer order, whether it churned)."""

    #: The month's row positions in customer order (`load_snapshot`'s order of the rows).
    order: npt.NDArray[np.intp]
    #: Whether each row churned, in the month's row order.
    churned: npt.NDArray[np.bool_]
    #: Rows in each part (row group, on a cluster) read, in order.
    part_rows: tuple[int, ...]
    #: The customer IDs in the month's row order (an Arrow array), for the champion's exclusion.
    ids: Any
    #: Each column's dtype in the month (a chunk's may be narrower: int where the month is float).
    dtypes: dict[Any, Any]


def churned(labels: pd.Series) -> npt.NDArray[np.bool_]:
    """Whether each label is the positive one; a label neither `Yes` nor `No` (a suite without
    the target's checks let it through) cannot be split on as an in-memory month would be."""
    flags = (labels == schema.POSITIVE_LABEL).to_numpy()
    if not (flags | (labels == "No").to_numpy()).all():
        raise ValueError(f"{schema.TARGET} holds values other than Yes and No: add its checks")
    return flags


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
        """One digest of the parts' chunks, in the parts' order (the month's row order); the
        parts give theirs up (left empty), so the month's hashes are held once."""
        whole = cls()
        for part in parts:
            whole._hashes.extend(part._hashes)
            whole._ids.extend(part._ids)
            whole._columns = part._columns or whole._columns
            part._hashes, part._ids = [], []
        return whole

    @property
    def ids(self) -> Any:
        """The customer IDs of every chunk added, in the month's row order (an Arrow array)."""
        import pyarrow as pa

        return pa.chunked_array(self._ids, type=pa.string())

    def digest(self) -> str:
        """The digest of every chunk added, rows in customer order (a stable sort by ID)."""
        return self.ordered()[0]

    def ordered(self) -> tuple[str, npt.NDArray[np.intp]]:
        """The digest, and the customer order: the month's row positions sorted by ID."""
        import pyarrow.compute as pc

        # Into one array chunk by chunk, each chunk's freed as it is copied: held once.
        hashes = np.empty(sum(h.size for h in self._hashes), dtype=np.uint64)
        chunks, self._hashes, start = self._hashes[::-1], [], 0
        while chunks:
            chunk = chunks.pop()
            hashes[start : start + chunk.size] = chunk
            start += chunk.size
            del chunk
        # Stable, nulls last (the default): as load_snapshot orders the rows. Arrow's uint64
        # indices viewed as positions (all < 2**63), not copied.
        order = pc.sort_indices(self.ids).to_numpy().view(np.intp)
        digest = hashlib.sha256(",".join(self._columns).encode())
        for start in range(0, order.size, _DIGEST_ROWS):  # the hashes in order, a slice at a time
            digest.update(hashes[order[start : start + _DIGEST_ROWS]].tobytes())
        return f"sha256:{digest.hexdigest()[:32]}", order


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


@dataclass(frozen=True)
class StreamedSnapshot:
    """A month that passed the gate in one pass over its source, never held: what a retrain
    needs of it besides the rows it takes in a second pass (`tasks.training.streamed`)."""

    read: MonthRead
    source: str
    digest: str
    period: str
    rows: int
    keys: MonthKeys

    def run_params(self) -> dict[str, str | int]:
        """What an MLflow run records about the data it was given (as `Snapshot`'s)."""
        return {"period": self.period, "data.source": self.source, "data.rows": self.rows}
