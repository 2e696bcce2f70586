"""Which month, from where: the period, the location of a snapshot and how to read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

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

#: SQL identifiers we accept for a table or a column: `name` or `schema.name`, nothing to quote.
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"


class SourceOptions(BaseModel):
    """How to read the `data` location: the file format, or the table/query of a database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = Field(
        default="auto",
        pattern=r"^[a-z0-9][a-z0-9.]*$",
        description="File format: auto (by extension: .csv, .csv.gz, .parquet, or a folder of "
        "Parquet files), csv, csv.gz, parquet, or a format a registered source reads. Not used "
        "for databases.",
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
        description="Database table or Parquet data: the column holding the period (YYYY-MM) "
        "or dates in it (ISO text, a date or timestamp type). Dropped before validation; rows "
        "of another period are rejected.",
    )


def current_period(now: datetime | None = None) -> str:
    """The calendar month of `now` (default: the present) in UTC, as YYYY-MM."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def resolve_source(source: str, period: str) -> str:
    """Fill a `{period}` placeholder, so one location serves every month."""
    return source.replace("{period}", period)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


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
