"""Load the month: from a file, a URL, object storage or a database, or generated on request.

Whatever the source, one `Snapshot` comes out: the 21 columns typed as a CSV read types them,
rows in customer order (so the same rows give the same digest and the same decision, whether
they came as CSV, CSV.gz, Parquet or a query), the location named without credentials.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.data.columnar import read_parquet_frame
from tasks.data.configured import find_configured_source
from tasks.data.request import (
    DEFAULT_MAX_BYTES,
    GENERATED,
    SourceOptions,
    file_format,
    is_fsspec_url,
    is_sql_url,
    is_url,
    resolve_source,
)
from tasks.data.schema import ID_COLUMN
from tasks.data.snapshot import Snapshot, digest_frame
from tasks.data.sources import read_source_bytes
from tasks.data.sql import read_sql_frame
from tasks.data.storage import read_file_bytes
from tasks.errors import DataSourceMisconfigured, SnapshotRejected
from tasks.gate.parse import parse_snapshot
from tasks.gate.typed import check_typed_frame
from tasks.settings import Settings, redact_uri
from tasks.steps import retried_step

#: Each connect and each read of a source waits at most this long.
READ_TIMEOUT_SECONDS = 30.0
_SECRET = re.compile(r"\{secret:([a-z0-9][a-z0-9-]*)\}")
NO_DATA = (
    "no data source configured: give `data` (a path, URL, s3://… location or database URL), "
    "or set the Prefect Variable `churn-retrain-data` (make deploy DATA=…); "
    f'`data: "{GENERATED}"` retrains on generated rows'
)


@dataclass(frozen=True)
class SnapshotRequest:
    """Which month, from where: a location (`{period}` filled in) and how to read it, or
    `"generated"` for generated rows. No location is an error, never generated rows."""

    source: str | None
    period: str
    seed: int = 0
    generated_rows: int = 7043
    drift: float = 0.0
    scenario: str = "none"
    options: SourceOptions = field(default_factory=SourceOptions)
    #: Rows sorted by customer, so storage order does not change the digest or the decision
    #: (scoring keeps the input's order).
    in_customer_order: bool = True
    #: Text columns read as categoricals (Parquet) stay categoricals: a big month in a fraction
    #: of the memory and time; for callers that take rows out with `take_rows` (the retrain).
    categories: bool = False


@retried_step("load-snapshot", delay_seconds=5)
def load_snapshot(
    request: SnapshotRequest,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_seconds: float | None = None,
) -> Snapshot:
    """Read the month's rows from its source, or generate them when asked to.

    A read ends within `deadline_seconds` (default: the `download_timeout_seconds` setting); a
    5xx answer, a timeout or an unreachable server (`SnapshotUnavailable`) is retried, a 4xx,
    a missing file or refused credentials (`SnapshotRejected`) is not.
    """
    source, period, options = request.source, request.period, request.options
    if source is None:  # a deployment's run: the location configured on the Prefect server
        configured = find_configured_source()
        if configured is None:
            raise DataSourceMisconfigured(NO_DATA)
        source, options = configured
    if source == GENERATED:
        frame, label = _generated(request)
    else:
        label = resolve_source(source, period)
        deadline = deadline_seconds or Settings().download_timeout_seconds
        frame = read_frame(
            _with_secrets(label), options, period,
            shown=redact_uri(label), max_bytes=max_bytes, deadline=deadline,
            categories=request.categories,
        )  # fmt: skip
        if request.in_customer_order and ID_COLUMN in frame:
            frame = _in_customer_order(frame)
    if ID_COLUMN in frame and frame[ID_COLUMN].dtype != object:
        frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    return Snapshot(
        frame=frame, source=redact_uri(label), digest=digest_frame(frame), period=period
    )


def read_frame(
    location: str,
    options: SourceOptions,
    period: str,
    *,
    shown: str,
    max_bytes: int,
    deadline: float,
    categories: bool = False,
) -> pd.DataFrame:
    """The month's rows from a database, a Parquet file or folder, or a (gzipped) CSV file
    (`categories`: see `check_typed_frame`)."""
    timeout = min(READ_TIMEOUT_SECONDS, deadline)
    if is_sql_url(location):
        frame = read_sql_frame(
            location, options, period, shown=shown, timeout=timeout, deadline=deadline
        )
        what = f"table {options.table}" if options.table else "query result"
        return check_typed_frame(
            frame, source=shown, period=period, period_column=options.period_column, what=what
        )
    if options.table or options.query:
        raise DataSourceMisconfigured(
            f"Snapshot {shown}: a table or query needs a database URL (postgresql+psycopg://…, "
            "sqlite:///file.db)"
        )
    local_dir = not is_url(location) and not is_fsspec_url(location) and Path(location).is_dir()
    kind = file_format(location, options, is_dir=local_dir)
    if kind == "parquet" and not is_url(location):
        frame = read_parquet_frame(
            location, period=period, period_column=options.period_column, shown=shown,
            timeout=timeout, deadline=deadline, max_bytes=max_bytes,
        )  # fmt: skip
        return check_typed_frame(
            frame, source=shown, period=period, period_column=options.period_column,
            what="Parquet data", categories=categories,
        )  # fmt: skip
    if is_fsspec_url(location):
        payload = read_file_bytes(
            location, shown=shown, timeout=timeout, deadline=deadline, max_bytes=max_bytes
        )
    else:
        payload = read_source_bytes(
            location, timeout=timeout, deadline=deadline, max_bytes=max_bytes
        )
    if kind == "parquet":  # over http(s): the file's bytes
        return check_typed_frame(
            _parquet_bytes(payload, shown=shown), source=shown, period=period,
            period_column=options.period_column, what="Parquet data",
        )  # fmt: skip
    if kind == "csv.gz":
        payload = _gunzip(payload, shown=shown, max_bytes=max_bytes)
    return parse_snapshot(payload, source=shown)


def _in_customer_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by customer id, stably (pyarrow's sort: ~10x pandas' on millions of ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = frame[ID_COLUMN]
    if ids.dtype != object or ids.isna().any() or not _all_strings(ids):
        return frame.sort_values(ID_COLUMN, kind="mergesort", ignore_index=True)
    order = pc.sort_indices(pa.array(ids.to_numpy(), type=pa.string())).to_numpy()
    ordered = frame.take(order)
    ordered.index = pd.RangeIndex(len(ordered))  # reset_index(drop=True) would copy it again
    return ordered


def _all_strings(values: pd.Series) -> bool:
    return pd.api.types.infer_dtype(values, skipna=False) == "string"


def _gunzip(payload: bytes, *, shown: str, max_bytes: int) -> bytes:
    """Decompressed bytes, refused past `max_bytes` (a small file can inflate enormously)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(payload)) as unzipped:
            text = unzipped.read(max_bytes + 1)
    except (OSError, EOFError) as exc:
        raise SnapshotRejected(
            f"Snapshot {shown}: not a complete gzip file ({type(exc).__name__})"
        ) from None
    if len(text) > max_bytes:
        raise SnapshotRejected(
            f"Snapshot {shown}: decompresses to over the {max_bytes:,}-byte limit"
        )
    return text


def _parquet_bytes(payload: bytes, *, shown: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(payload)).to_pandas()
    except (pa.ArrowInvalid, OSError):
        raise SnapshotRejected(f"Snapshot {shown}: not a Parquet file") from None


def _with_secrets(location: str) -> str:
    """`{secret:NAME}` replaced by the value of the Prefect Secret block NAME (never shown)."""
    if not _SECRET.search(location):
        return location
    from prefect.blocks.system import Secret

    def value(match: re.Match[str]) -> str:
        try:
            secret: Any = Secret.load(match.group(1))
        except ValueError:
            raise DataSourceMisconfigured(
                f"no Prefect Secret block named {match.group(1)!r} (for the data location)"
            ) from None
        return str(secret.get())

    return _SECRET.sub(value, location)


def _generated(request: SnapshotRequest) -> tuple[pd.DataFrame, str]:
    from tasks.data.generate import generate_snapshot

    frame = generate_snapshot(
        request.period,
        seed=request.seed,
        rows=request.generated_rows,
        drift=request.drift,
        scenario=request.scenario,
    )
    label = f"generated:{request.period}?seed={request.seed}&rows={request.generated_rows}"
    if request.drift:
        label += f"&scenario={request.scenario}&drift={request.drift}"
    return frame, label
