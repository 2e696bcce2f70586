"""Every kind of source behind one interface, `Source`, found in one registry keyed by scheme and
format (after fsspec's `register_implementation` and SQLAlchemy's dialect registry).

`locate` turns the `data` parameter into a `Location`: the month filled in, Prefect Secret blocks
resolved, the scheme (`file` for a plain path, `https`, `s3`, `postgresql`, `generated`, ...) and
the format (by `--source.format`, else by extension; a folder is Parquet). `source_for` finds the
`Source` that reads it. Adding a kind of source is one module defining a `Source` and one
`register_source` call (tests/unit/test_source_registry.py adds JSON Lines that way).
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import pandas as pd

from tasks.data.request import GENERATED, SnapshotRequest, SourceOptions, resolve_source
from tasks.errors import DataSourceMisconfigured
from tasks.runtime.deadline import Deadline
from tasks.settings import redact_uri

ANY = "*"
_SECRET = re.compile(r"\{secret:([a-z0-9][a-z0-9-]*)\}")
#: Schemes a SQLAlchemy URL starts with (`postgresql+psycopg://`, `sqlite:///file.db`, ...).
SQL_SCHEMES = ("postgresql", "postgres", "sqlite", "mysql", "mariadb", "mssql", "oracle", "duckdb")


@dataclass(frozen=True)
class Location:
    """Where the month is, resolved: what a `Source` reads."""

    text: str  # `{period}` and secrets filled in: may hold credentials, never shown
    shown: str  # the same without credentials, for messages
    scheme: str
    format: str  # "" for sources without a file format (a database, generated rows)
    period: str
    options: SourceOptions = field(default_factory=SourceOptions)
    is_dir: bool = False


@dataclass(frozen=True)
class ReadLimits:
    """What bounds a read: its deadline, its size, and whether text may stay categorical."""

    deadline: Deadline
    max_bytes: int
    categories: bool = False

    @classmethod
    def from_settings(
        cls, max_bytes: int | None = None, deadline_seconds: float | None = None
    ) -> ReadLimits:
        """The settings' size limit and download deadline, unless given."""
        from tasks.settings import Settings

        settings = Settings()
        return cls(
            deadline=Deadline.after(deadline_seconds or settings.download_timeout_seconds),
            max_bytes=settings.max_snapshot_bytes if max_bytes is None else max_bytes,
        )


class Source(ABC):
    """Reads the month's rows at a `Location`, typed as a CSV read types them."""

    #: Whether `chunks`, `batches` and `row_groups` work: the month is read a part at a time.
    streams: ClassVar[bool] = False

    def can_stream(self, location: Location) -> bool:
        return self.streams

    @abstractmethod
    def read(self, location: Location, limits: ReadLimits) -> pd.DataFrame:
        """The whole month, past the parse guards (or their typed equivalents)."""

    def chunks(
        self,
        location: Location,
        *,
        chunk_rows: int,
        limits: ReadLimits,
        groups: Sequence[int] | None = None,
    ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """(as read, as typed) frames of `chunk_rows` rows, for validation."""
        raise NotImplementedError(f"{type(self).__name__} is read whole")

    def take(
        self,
        location: Location,
        positions: npt.NDArray[np.intp],
        *,
        limits: ReadLimits,
        groups: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """The typed rows at ascending `positions` (in `chunks`' row order), in that order: a
        streamed month's holdout and training sample, taken in a second pass."""
        raise NotImplementedError(f"{type(self).__name__} is read whole")

    def batches(
        self,
        location: Location,
        *,
        batch_rows: int,
        deadline: Deadline,
        groups: Sequence[int] | None = None,
    ) -> Generator[tuple[pd.DataFrame, str], None, None]:
        """(typed frame, which rows) per batch, read ahead while the last is used (scoring)."""
        raise NotImplementedError(f"{type(self).__name__} is read whole")

    def row_groups(self, location: Location, limits: ReadLimits) -> int:
        """How many parts (Parquet row groups) the month holds: a cluster's tasks."""
        raise NotImplementedError(f"{type(self).__name__} is read whole")


#: Built-in sources by (scheme, format), imported when first asked for. `*` matches any.
_REGISTRY: dict[tuple[str, str], Source | str] = {
    (GENERATED, ANY): "tasks.data.synthetic:GeneratedSource",
    **{(scheme, ANY): "tasks.data.sql:SqlSource" for scheme in SQL_SCHEMES},
    (ANY, "csv"): "tasks.data.csv:CsvSource",
    (ANY, "csv.gz"): "tasks.data.csv:CsvSource",
    (ANY, "parquet"): "tasks.data.parquet:ParquetSource",
}
#: File extensions and the format they mean (the longest match wins).
_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".csv.gz": "csv.gz",
    ".csv.gzip": "csv.gz",
    ".gz": "csv.gz",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
}


def register_source(
    source: Source,
    *,
    schemes: Sequence[str] = (ANY,),
    formats: Sequence[str] = (ANY,),
    extensions: Sequence[str] = (),
) -> None:
    """Make `source` read these schemes and formats (`*`: any), files with `extensions` being
    of its format (one format with extensions)."""
    for scheme in schemes:
        for fmt in formats:
            _REGISTRY[(scheme, fmt)] = source
    if extensions:
        (fmt,) = formats
        _EXTENSIONS.update(dict.fromkeys((e.lower() for e in extensions), fmt))


def known_formats() -> list[str]:
    return sorted({fmt for _, fmt in _REGISTRY if fmt != ANY})


def source_for(location: Location) -> Source:
    """The registered `Source` for the location's scheme and format."""
    for key in ((location.scheme, location.format), (ANY, location.format), (location.scheme, ANY)):
        found = _REGISTRY.get(key)
        if found is not None:
            return _loaded(key, found)
    what = f"format {location.format!r}" if location.format else f"scheme {location.scheme!r}"
    raise DataSourceMisconfigured(
        f"Snapshot {location.shown}: no source reads {what} (formats: "
        f"{', '.join(known_formats())}; or a database URL)"
    )


def _loaded(key: tuple[str, str], found: Source | str) -> Source:
    if isinstance(found, Source):
        return found
    module, _, name = found.partition(":")
    source: Source = getattr(importlib.import_module(module), name)()
    _REGISTRY[key] = source
    return source


def locate(request: SnapshotRequest, source: str, options: SourceOptions) -> Location:
    """The location of `request`'s month in `source` (a `data` value), secrets resolved."""
    if source == GENERATED:
        label = f"{GENERATED}:{request.period}?seed={request.seed}&rows={request.generated_rows}"
        if request.drift:
            label += f"&scenario={request.scenario}&drift={request.drift}"
        return Location(label, label, GENERATED, "", request.period, options)
    written = resolve_source(source, request.period)
    text = _with_secrets(written)
    scheme = _scheme(text)
    if (options.table or options.query) and scheme not in SQL_SCHEMES:
        raise DataSourceMisconfigured(
            f"Snapshot {redact_uri(written)}: a table or query needs a database URL "
            "(postgresql+psycopg://…, sqlite:///file.db)"
        )
    is_dir = scheme == "file" and Path(text.removeprefix("file://")).is_dir()
    fmt = "" if scheme in SQL_SCHEMES else file_format(text, options, is_dir=is_dir)
    return Location(text, redact_uri(written), scheme, fmt, request.period, options, is_dir)


def locate_month(location: str, period: str, options: SourceOptions | None = None) -> Location:
    """The `Location` of a month to stream, from a location `streamed` accepted."""
    options = options or SourceOptions()
    return locate(SnapshotRequest(location, period, options=options), location, options)


def _scheme(location: str) -> str:
    if "://" not in location:
        return "file"
    return urlsplit(location).scheme.partition("+")[0] or "file"


def file_format(location: str, options: SourceOptions, *, is_dir: bool = False) -> str:
    """The format of a file location: the explicit option, else by extension."""
    if options.format != "auto":
        return options.format
    path = urlsplit(location).path if "://" in location else location
    name = path.rstrip("/").lower()
    if is_dir or path.endswith("/"):
        return "parquet"
    matches = [e for e in _EXTENSIONS if name.endswith(e)]
    return _EXTENSIONS[max(matches, key=len)] if matches else "csv"


def streamed(request: SnapshotRequest) -> tuple[Source, Location] | None:
    """The source and location of a month read a part at a time (a Parquet file or folder
    that pyarrow reads), or None when it is loaded whole; no location is `load_snapshot`'s
    to report."""
    if request.source is None or "{secret:" in request.source:
        return None
    location = locate(request, request.source, request.options)
    source = source_for(location)
    return (source, location) if source.can_stream(location) else None


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
