"""CSV and gzipped CSV months, from any place `fetch_bytes` reads: the parse guards, then pandas."""

from __future__ import annotations

import gzip
import io

import pandas as pd

from tasks.data.fetch import fetch_bytes
from tasks.data.parse import parse_snapshot
from tasks.data.source import Location, ReadLimits, Source
from tasks.errors import SnapshotRejected


class CsvSource(Source):
    """`.csv` and `.csv.gz` files: local, http(s), s3://, gs://, abfs://."""

    def read(self, location: Location, limits: ReadLimits) -> pd.DataFrame:
        payload = fetch_bytes(
            location.text, shown=location.shown, deadline=limits.deadline,
            max_bytes=limits.max_bytes,
        )  # fmt: skip
        if location.format == "csv.gz":
            payload = gunzip(payload, shown=location.shown, max_bytes=limits.max_bytes)
        return parse_snapshot(payload, source=location.shown)


def gunzip(payload: bytes, *, shown: str, max_bytes: int) -> bytes:
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
