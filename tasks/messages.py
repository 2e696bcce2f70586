"""Wording shared by the messages a person reads: counts, plurals, percentages, names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


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
