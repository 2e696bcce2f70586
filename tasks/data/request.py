"""Which month, from where: the period, the location of a snapshot and how to read it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
#: Files above this are refused before parsing (a month of even a large base is far smaller).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: Longest a URL download may take, start to end (512 MB at under 2 MB/s is still in time).
DEFAULT_DOWNLOAD_DEADLINE = 300.0
#: What can drift in a generated month (see tasks/data/generate.py).
DRIFT_SCENARIOS: tuple[str, ...] = ("none", "price_rise", "fibre_launch", "contract_shock")
#: The `data` value that asks for a generated month (never the default of a scheduled run).
GENERATED = "generated"

Format = Literal["auto", "csv", "csv.gz", "parquet"]
#: SQL identifiers we accept for a table or a column: `name` or `schema.name`, nothing to quote.
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
#: URL schemes that fsspec reads (the cloud ones through the optional extras).
FSSPEC_SCHEMES = ("file", "s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "memory")
_SQL_SCHEME = re.compile(
    r"^(postgresql|postgres|sqlite|mysql|mariadb|mssql|oracle|duckdb)(\+\w+)?$"
)


class SourceOptions(BaseModel):
    """How to read the `data` location: the file format, or the table/query of a database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Format = Field(
        default="auto",
        description="File format: auto (by extension: .csv, .csv.gz, .parquet, or a folder of "
        "Parquet files), csv, csv.gz or parquet. Not used for databases.",
    )
    table: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Database source: the table (or schema.table) holding every month, one "
        "row per customer and month; the month's rows are those whose `period_column` is the "
        "period.",
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description="Database source: a SELECT returning the month's rows instead of `table`; "
        "write `:period` where the period goes (it is bound as a parameter, never pasted in).",
    )
    period_column: str = Field(
        default="period",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Database source: the column holding the period (YYYY-MM). Dropped before "
        "validation; rows of another period are rejected.",
    )


def current_period(now: datetime | None = None) -> str:
    """The calendar month of `now` (default: the present) in UTC, as YYYY-MM."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def resolve_source(source: str, period: str) -> str:
    """Fill a `{period}` placeholder, so one location serves every month."""
    return source.replace("{period}", period)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_sql_url(source: str) -> bool:
    """A SQLAlchemy database URL (`postgresql+psycopg://…`, `sqlite:///file.db`, …)."""
    scheme = source.partition("://")[0] if "://" in source else ""
    return bool(_SQL_SCHEME.match(scheme))


def is_fsspec_url(source: str) -> bool:
    """An fsspec URL (`s3://`, `gs://`, `abfs://`, `file://`, …), not a plain path or http."""
    return "://" in source and urlsplit(source).scheme in FSSPEC_SCHEMES


def file_format(location: str, options: SourceOptions, *, is_dir: bool = False) -> Format:
    """The format of a file location: the explicit option, else by extension."""
    if options.format != "auto":
        return options.format
    path = urlsplit(location).path if "://" in location else location
    name = path.rstrip("/").lower()
    if is_dir or name.endswith((".parquet", ".pq", ".parq")) or path.endswith("/"):
        return "parquet"
    if name.endswith((".csv.gz", ".csv.gzip", ".gz")):
        return "csv.gz"
    return "csv"
