"""A month's snapshot: loaded, parsed, typed and digested."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.data.request import DEFAULT_MAX_BYTES, resolve_source
from tasks.data.schema import ID_COLUMN
from tasks.data.sources import read_source_bytes
from tasks.errors import is_transient
from tasks.gate.parse import parse_snapshot
from tasks.settings import redact_uri


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


def digest_frame(frame: pd.DataFrame) -> str:
    """A content digest that ignores column order and row index: same data, same digest."""
    ordered = frame[sorted(frame.columns)]
    hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    digest = hashlib.sha256(",".join(ordered.columns).encode())
    digest.update(hashes.tobytes())
    return f"sha256:{digest.hexdigest()[:32]}"


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
        from tasks.data.generate import generate_snapshot

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
