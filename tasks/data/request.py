"""Which month, from where: the period and the source of a snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
#: Files above this are refused before parsing (a month of even a large base is far smaller).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: Longest a URL download may take, start to end (512 MB at under 2 MB/s is still in time).
DEFAULT_DOWNLOAD_DEADLINE = 300.0
#: What can drift in a generated month (see tasks/data/generate.py).
DRIFT_SCENARIOS: tuple[str, ...] = ("none", "price_rise", "fibre_launch")


def current_period(now: datetime | None = None) -> str:
    """The calendar month of `now` (default: the present) in UTC, as YYYY-MM."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def resolve_source(source: str, period: str) -> str:
    """Fill a `{period}` placeholder, so one location serves every month."""
    return source.replace("{period}", period)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))
