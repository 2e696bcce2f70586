"""Guards for typed sources (Parquet, a database query): the CSV parse guards' equivalents.

A CSV file is text, checked line by line before pandas reads it (tasks/data/parse.py). A Parquet
file or a query result arrives typed, so its guards look at the columns instead: duplicated or
missing names, types that cannot hold the column's values, no rows, rows of another period.
Messages name the source, the column and the problem; never a cell's value.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from tasks.data.labels import column_spellings, describe_encoding
from tasks.data.parse import coerce_types
from tasks.data.period import describe_kind, in_period, months_of, no_rows
from tasks.data.schema import COLUMNS, ID_COLUMN, NUMERIC_COLUMNS, STRING_COLUMNS, TARGET
from tasks.errors import SnapshotRejected
from tasks.messages import describe_names, normalise_name, plural

_CANONICAL = {normalise_name(column): column for column in COLUMNS}


def check_typed_frame(
    frame: pd.DataFrame,
    *,
    source: str,
    period: str,
    period_column: str | None,
    what: str,
    categories: bool = False,
) -> pd.DataFrame:
    """The month's 21 columns, typed as a CSV read types them; `SnapshotRejected` otherwise.

    `what` says where the rows came from ("query result", "Parquet file") in messages. With
    `categories`, text columns that arrived as categoricals (Parquet dictionaries) stay so,
    the same values in an eighth of the memory (`take_rows` makes objects of rows taken out).
    """
    frame = _canonical_names(frame)
    duplicated = [name for name, n in Counter(map(str, frame.columns)).items() if n > 1]
    if duplicated:
        raise _rejected(source, f"the {what} has duplicated columns: {describe_names(duplicated)}")
    if period_column is not None and period_column in frame:
        frame = _this_period(frame, source=source, period=period, column=period_column, what=what)
    if frame.empty:
        raise _rejected(source, f"the {what} has no rows for {period}")
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise _rejected(source, f"the {what} lacks the columns: {', '.join(missing)}")
    for column in COLUMNS:
        _check_type(frame[column], source=source, what=what)
    return coerce_types(_as_objects(frame, keep_categories=categories))


def _canonical_names(frame: pd.DataFrame) -> pd.DataFrame:
    """`customerid` (a database folds unquoted names to lower case) becomes `customerID`."""
    present = set(map(str, frame.columns))
    renames = {
        name: _CANONICAL[normalise_name(name)]
        for name in map(str, frame.columns)
        if normalise_name(name) in _CANONICAL
        and _CANONICAL[normalise_name(name)] != name
        and _CANONICAL[normalise_name(name)] not in present
    }
    return frame.rename(columns=renames) if renames else frame


def _this_period(
    frame: pd.DataFrame, *, source: str, period: str, column: str, what: str
) -> pd.DataFrame:
    """The frame without its period column, if every row is the period's: the month itself
    or a date in it (`in_period`); `SnapshotRejected` otherwise."""
    values = frame[column]
    ours = in_period(values, period)
    if not ours.all():
        others = values[~ours]
        kind = describe_kind(others)
        if kind is not None and not ours.any():
            raise _rejected(source, no_rows(what, period, column, kind))
        rows = plural(int((~ours).sum()), "row")
        if kind is not None:  # what they hold is named by kind: the cells may be anything
            shown = f"values that look like {kind}"
        else:
            months = months_of(others)
            shown = ", ".join(months[:3]) + (
                f" and {len(months) - 3} more" if len(months) > 3 else ""
            )
        raise _rejected(
            source, f"the {what} holds {rows} of another period than {period} in column "
            f"{column} ({shown})",
        )  # fmt: skip
    return frame.drop(columns=[column])


def _check_type(series: pd.Series, *, source: str, what: str) -> None:
    """Refuse a type that cannot hold the column (a date for tenure, a number for gender).

    Text in a numeric column is let through: the suite reports it by value count, as for CSV.
    """
    if _is_categorical(series):  # Parquet dictionary: its values count, each once
        series = pd.Series(series.cat.categories, name=series.name, dtype=object)
    column, dtype = str(series.name), series.dtype
    kind = dtype.kind
    texty = kind in "OSU" or isinstance(dtype, pd.CategoricalDtype | pd.StringDtype)
    if column in NUMERIC_COLUMNS:
        if kind in "iuf" or texty:
            if kind == "O" and not _all_text_or_numbers(series):
                raise _wrong(source, what, column, dtype, "a number")
            return
        raise _wrong(source, what, column, dtype, "a number")
    if column in STRING_COLUMNS and not texty:
        # Labels as 0/1 or true/false: say how to map them, not only that the type is wrong.
        encoding = describe_encoding(column_spellings(series)) if column == TARGET else None
        if encoding is not None:
            raise _rejected(source, f"column {column} {encoding} (type {dtype} in the {what})")
        raise _wrong(source, what, column, dtype, "text")
    if column in STRING_COLUMNS and kind == "O" and not _all_text(series):
        raise _wrong(source, what, column, dtype, "text")


#: What `infer_dtype` may say of a numeric column held as objects: text (the suite counts what
#: does not parse), numbers, or decimals (a database's NUMERIC); not dates, bytes or booleans.
_NUMERIC_OBJECTS = frozenset(
    {"string", "integer", "floating", "mixed-integer-float", "mixed-integer", "decimal",
     "mixed", "empty"}
)  # fmt: skip


def _all_text(series: pd.Series) -> bool:
    return pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")


def _all_text_or_numbers(series: pd.Series) -> bool:
    return pd.api.types.infer_dtype(series, skipna=True) in _NUMERIC_OBJECTS


def _as_objects(frame: pd.DataFrame, *, keep_categories: bool = False) -> pd.DataFrame:
    """Categorical (Parquet dictionary) and string columns as plain objects, as a CSV read has
    (`keep_categories`: categoricals but the customer ID's kept as they are).

    A shallow copy whose converted columns are replaced: the caller's frame is untouched and
    the columns that need no change (most of a big month) are not copied.
    """
    frame = frame.copy(deep=False)
    for column in STRING_COLUMNS:
        if column not in frame:
            continue
        values = frame[column]
        if keep_categories and column != ID_COLUMN and _is_categorical(values):
            continue
        converted = values if values.dtype == object else values.astype(object)
        if converted.isna().any():  # None (pyarrow) as a CSV's NaN; most columns have none
            converted = converted.where(converted.notna(), np.nan)
        if converted is not values:
            frame[column] = converted
    return frame


def _is_categorical(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype)


def _wrong(source: str, what: str, column: str, dtype: object, expected: str) -> SnapshotRejected:
    return _rejected(source, f"column {column} has type {dtype} in the {what}, expected {expected}")


def _rejected(source: str, problem: str) -> SnapshotRejected:
    return SnapshotRejected(f"Snapshot {source}: {problem}")
