"""The target's labels in another encoding than Yes/No (0/1, true/false, yes/no in another case):
recognised and named, so a person is told to map them instead of reading about churn rates.

Only a small set of known label spellings is ever named; a column holding anything else is not
described here (its values could be a customer's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from tasks.data.schema import NEGATIVE_LABEL, POSITIVE_LABEL

#: Spellings of a label people export instead of Yes/No, lower case, by what they mean.
_POSITIVE = frozenset({"1", "true", "yes", "y"})
_NEGATIVE = frozenset({"0", "false", "no", "n"})
#: More distinct values than this is not one label set in another spelling.
_MOST_LABELS = 8


def label_spellings(values: Iterable[Any]) -> frozenset[str] | None:
    """The distinct non-null values as label spellings (`0`, `1`, `True`, `yes`, `N`, ...)
    when every one is such a spelling, else None (nothing is said of other values)."""
    spellings: set[str] = set()
    for value in values:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        spelling = _spelling(value)
        if spelling is None:
            return None
        spellings.add(spelling)
        if len(spellings) > _MOST_LABELS:
            return None
    return frozenset(spellings)


def column_spellings(values: pd.Series) -> frozenset[str] | None:
    """`label_spellings` of a column's distinct values."""
    return label_spellings(values.dropna().unique())


def describe_encoding(spellings: frozenset[str] | None) -> str | None:
    """E.g. `holds 0/1 values; expected Yes/No (map 1 -> Yes, 0 -> No)`; None when the labels
    are Yes/No already, or not label spellings (the suite's own messages say the rest)."""
    if not spellings or spellings <= {POSITIVE_LABEL, NEGATIVE_LABEL}:
        return None
    negatives = sorted(s for s in spellings if s.lower() in _NEGATIVE)
    positives = sorted(s for s in spellings if s.lower() in _POSITIVE)
    mapping = [f"{s} -> {POSITIVE_LABEL}" for s in positives if s != POSITIVE_LABEL]
    mapping += [f"{s} -> {NEGATIVE_LABEL}" for s in negatives if s != NEGATIVE_LABEL]
    return (
        f"holds {'/'.join(negatives + positives)} values; expected "
        f"{POSITIVE_LABEL}/{NEGATIVE_LABEL} (map {', '.join(mapping)})"
    )


def _spelling(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip()
        return text if text.lower() in _POSITIVE | _NEGATIVE else None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return str(int(value))
    return None
