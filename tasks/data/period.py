"""Which rows are the month's: a period column may hold the month itself (`2026-03`) or dates in
it (`2026-03-01`, `2026-03-14T09:30:00`, a date or timestamp type). What a column holding
neither contains is described by kind (numbers, text, ...), never by quoting its cells.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

_MONTH = re.compile(r"\d{4}-\d{2}")
#: An ISO date, alone or starting a date and time (`T` or a space between them).
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ].*)?", re.DOTALL)
#: Distinct values looked at to say what a column holds.
_SAMPLE = 1000


def month_bounds(period: str) -> tuple[date, date]:
    """The first day of `period` (YYYY-MM) and the first day of the month after it."""
    year, month = (int(part) for part in period.split("-"))
    start = date(year, month, 1)
    return start, date(year + month // 12, month % 12 + 1, 1)


def next_period(period: str) -> str:
    return month_bounds(period)[1].strftime("%Y-%m")


def value_month(value: Any) -> str | None:
    """The month (YYYY-MM) a cell stands for: the month itself, or a date or time in it (a
    time with a zone, in its own zone); None for anything else."""
    if isinstance(value, str):
        if _MONTH.fullmatch(value):
            return value if 1 <= int(value[5:]) <= 12 else None
        found = _ISO_DATE.fullmatch(value)
        if found is None:
            return None
        try:
            day = date.fromisoformat(found.group(1))
        except ValueError:
            return None
        return f"{day.year:04d}-{day.month:02d}"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, date) and not pd.isna(value):  # datetime and pd.Timestamp too
        return f"{value.year:04d}-{value.month:02d}"
    return None


def in_period(values: pd.Series, period: str) -> np.ndarray:
    """Which rows are the period's (`value_month`); nulls are not."""
    if pd.api.types.is_datetime64_any_dtype(values):  # a zone-aware column: in its own zone
        year, month = (int(part) for part in period.split("-"))
        return ((values.dt.year == year) & (values.dt.month == month)).to_numpy(dtype=bool)
    # Each distinct value once: a month's period column holds one, or a few dates.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not len(uniques):
        return np.zeros(len(values), dtype=bool)
    ours = np.array([value_month(u) == period for u in uniques], dtype=bool)
    return np.where(codes >= 0, ours[np.maximum(codes, 0)], False)


def months_of(values: pd.Series) -> list[str]:
    """The distinct months the values stand for, sorted (the unknown ones left out)."""
    found = {value_month(u) for u in pd.unique(values.dropna())}
    return sorted(m for m in found if m is not None)


def describe_kind(values: pd.Series) -> str | None:
    """What a period column holds when it is not months or dates (`numbers`, `text`, ...);
    None when every value stands for a month (`value_month`), whichever month."""
    present = values.dropna()
    if present.empty:
        return "empty cells only" if len(values) else None
    if pd.api.types.is_datetime64_any_dtype(present):
        return None
    if pd.api.types.is_bool_dtype(present):
        return "true/false values"
    if pd.api.types.is_numeric_dtype(present):
        return "numbers"
    sample = pd.unique(present)[:_SAMPLE]
    if all(value_month(v) is not None for v in sample):
        return None
    if all(_is_number(v) for v in sample):
        return "numbers"
    if all(isinstance(v, str) for v in sample):
        return "text that is neither YYYY-MM nor an ISO date"
    return "values of mixed kinds"


def no_rows(what: str, period: str, column: str, kind: str) -> str:
    """The problem of a month whose period column holds no month or date (see `describe_kind`)."""
    return (
        f"the {what} has no rows for {period}: its period column {column} holds neither "
        f"months like {period} nor dates (it looks like {kind})"
    )


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.number):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False
