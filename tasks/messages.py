"""Wording shared by the messages a person reads: counts, plurals, percentages, names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from tasks.data.schema import COLUMNS


def normalise_name(name: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def join_words(items: Sequence[str]) -> str:
    return ", ".join(items)


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def as_percent(value: float | None) -> str:
    if value is None:
        return "n/a"
    # One bad row in a million is still worth seeing as non-zero.
    return f"{value:.1f}%" if value == 0 or value >= 0.1 else "<0.1%"


def number(value: Any) -> str:
    """Thousands separators, and no `.0` on the whole numbers GX turns bounds into."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)


def describe_names(names: Iterable[object]) -> str:
    """Known column names quoted, anything else only counted (it may be a customer's value)."""
    unique = list(dict.fromkeys(str(n) for n in names))
    known = [n for n in unique if n in COLUMNS]
    hidden = len(unique) - len(known)
    parts = known + ([f"{hidden} other{'s' if hidden > 1 else ''}"] if hidden else [])
    return ", ".join(parts) or "unnamed"
