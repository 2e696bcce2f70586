"""Where a scoring run reads the customer base and writes its scores: its parameters, else the
Prefect Variables the `score/monthly-base` deployment reads (set once on the server, read when a
run starts, so a triggered run needs no parameters), else (output only) the state dir."""

from __future__ import annotations

from pathlib import Path

from tasks.data.configured import (
    SCORE_BASE_VARIABLE,
    SCORE_OUTPUT_VARIABLE,
    find_score_base,
    find_score_output,
)
from tasks.data.request import SourceOptions
from tasks.errors import DataSourceMisconfigured, UsageError
from tasks.scoring.output import unsupported_output

NO_BASE = (
    "no customer base to score: give `data` (a path, URL, s3://… location or database URL), "
    f"or set the Prefect Variable `{SCORE_BASE_VARIABLE}` "
    f"(uv run prefect variable set {SCORE_BASE_VARIABLE} LOCATION)"
)


def base_location(data: str, source: SourceOptions) -> tuple[str, SourceOptions]:
    """`data` and its options, or, when `data` is empty, the Variable's location and options."""
    if data:
        return data, source
    configured = find_score_base()
    if configured is None:
        raise DataSourceMisconfigured(NO_BASE)
    return configured


def output_location(output: str | None) -> str | None:
    """`output`, else the Variable's (None: the state dir); its extension checked before
    anything is loaded (`UsageError`: scores are written as CSV or Parquet only)."""
    location = output or find_score_output()
    if location is not None and (problem := unsupported_output(location)) is not None:
        where = "" if output else f"the Prefect Variable {SCORE_OUTPUT_VARIABLE}: "
        raise UsageError(where + problem)
    return location


def output_path(location: str | None, home: Path, period: str, version: str) -> Path:
    """The file the scores go to: `location` with `{period}` and `{version}` filled in, or
    `<state dir>/scores/<period>-v<version>.csv`. Either way the file can name the version
    that wrote it, and every row does (`model_version`)."""
    if location is None:
        return home / "scores" / f"{period}-v{version}.csv"
    return Path(location.replace("{period}", period).replace("{version}", version))
