"""Read a snapshot's bytes from a file or an http(s) URL, within a size limit."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tasks.data.request import DEFAULT_MAX_BYTES, is_url
from tasks.errors import SnapshotRejected
from tasks.settings import redact_uri


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
