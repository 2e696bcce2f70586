"""Load the month's snapshot (path, URL or generator), digest it, and split off the holdout."""

from __future__ import annotations

import hashlib
import io
import re
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.errors import SnapshotRejected, is_transient
from tasks.parsing import check_csv_layout, decode_snapshot
from tasks.schema import FLOAT_COLUMNS, ID_COLUMN, INTEGER_COLUMNS, STRING_COLUMNS, TARGET
from tasks.settings import redact_uri

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
#: Files above this are refused before parsing (a month of even a large base is far smaller).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    """One month of customer rows and where they came from."""

    frame: pd.DataFrame
    source: str
    digest: str
    period: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def current_period(now: datetime | None = None) -> str:
    """The calendar month of `now` (default: the present) in UTC, as YYYY-MM."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def check_period(period: str) -> str:
    if not re.match(PERIOD_PATTERN, period or ""):
        raise ValueError(f"period must be YYYY-MM (e.g. 2026-11), got {period!r}")
    return period


def resolve_source(source: str, period: str) -> str:
    """Fill a `{period}` placeholder, so one location serves every month."""
    return source.replace("{period}", period)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_source_bytes(
    source: str, *, timeout: float = 30.0, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """The raw bytes of a local file or an http(s) URL, refusing anything over `max_bytes`."""
    shown = redact_uri(source)
    if is_url(source):
        with urllib.request.urlopen(source, timeout=timeout) as response:
            payload: bytes = response.read(max_bytes + 1)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise SnapshotRejected(f"Snapshot {shown}: file not found")
        if path.stat().st_size > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: file is {path.stat().st_size:,} bytes, over the "
                f"{max_bytes:,}-byte limit"
            )
        payload = path.read_bytes()
    if len(payload) > max_bytes:
        raise SnapshotRejected(f"Snapshot {shown}: over the {max_bytes:,}-byte limit")
    return payload


def parse_snapshot(payload: bytes, *, source: str) -> pd.DataFrame:
    """Parse CSV bytes with explicit dtypes; blank `TotalCharges` becomes missing.

    The parse guards (tasks/parsing.py) run first: pandas would read a wrong delimiter,
    duplicated headers or short rows without complaint. Numbers are coerced column by column
    so that text in a numeric column stays visible to the expectation suite (as object dtype)
    instead of failing the whole read.
    """
    shown = redact_uri(source)
    text = decode_snapshot(payload, source=shown)
    check_csv_layout(text, source=shown)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.ParserError as exc:
        raise SnapshotRejected(f"Snapshot {shown}: malformed CSV: {exc}") from exc
    return coerce_types(frame)


def coerce_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast known columns to their schema types; leave uncastable text for validation to report."""
    frame = frame.copy()
    for column in STRING_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype(object).str.strip()
    for column in (*INTEGER_COLUMNS, *FLOAT_COLUMNS):
        if column not in frame:
            continue
        raw = frame[column]
        if raw.dtype == object:
            raw = raw.str.strip().replace("", np.nan)
        numbers = pd.to_numeric(raw, errors="coerce")
        if numbers.isna().sum() > raw.isna().sum():
            continue  # text in a numeric column: keep it, the suite reports the type problem
        if column in INTEGER_COLUMNS and numbers.notna().all() and (numbers % 1 == 0).all():
            frame[column] = numbers.astype("int64")
        else:
            frame[column] = numbers.astype("float64")
    return frame


def digest_frame(frame: pd.DataFrame) -> str:
    """A content digest that ignores column order and row index: same data, same digest."""
    ordered = frame[sorted(frame.columns)]
    hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    digest = hashlib.sha256(",".join(ordered.columns).encode())
    digest.update(hashes.tobytes())
    return f"sha256:{digest.hexdigest()[:32]}"


def split_holdout(
    frame: pd.DataFrame, *, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified, seeded split into (train, holdout). The holdout is never trained on."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    train, holdout = train_test_split(
        frame, test_size=fraction, stratify=frame[TARGET], random_state=seed
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


@task(
    name="load-snapshot",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def load_snapshot(
    source: str | None,
    *,
    period: str,
    seed: int,
    generated_rows: int = 7043,
    drift: float = 0.0,
    scenario: str = "none",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Snapshot:
    """Read the month's data from a path or URL, or generate it when no source is given."""
    if source is None:
        from tasks.generate import generate_snapshot

        frame = generate_snapshot(
            period, seed=seed, rows=generated_rows, drift=drift, scenario=scenario
        )
        label = f"generated:{period}?seed={seed}&rows={generated_rows}"
        if drift:
            label += f"&scenario={scenario}&drift={drift}"
    else:
        label = resolve_source(source, period)
        frame = parse_snapshot(read_source_bytes(label, max_bytes=max_bytes), source=label)
    if ID_COLUMN in frame and frame[ID_COLUMN].dtype != object:
        frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    return Snapshot(
        frame=frame, source=redact_uri(label), digest=digest_frame(frame), period=period
    )
