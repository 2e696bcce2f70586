"""Failed expectations described for a person: by column, what was expected, how many values."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from tasks.data import schema
from tasks.data.labels import column_spellings, describe_encoding
from tasks.gate.columns import describe_column_mismatch
from tasks.messages import as_percent, join_words, number, plural

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )


#: Key used by `ValidationReport.by_column` for checks on the whole table.
TABLE_KEY = "(table)"


# Expectations that still mean something on a numeric column that arrived as text.
TYPE_AGNOSTIC = frozenset(
    {
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_to_exist",
    }
)


@dataclass(frozen=True)
class FailedCheck:
    """One failed expectation or project guard, described without data values."""

    column: str | None
    expectation: str
    problem: str
    unexpected_count: int | None


def not_evaluable(config: Mapping[str, Any], frame: pd.DataFrame) -> FailedCheck | None:
    """A FailedCheck for an expectation GX cannot evaluate on this frame, else None.

    GX reports these as exceptions keyed by metric id and retries each failed metric three
    times, recomputing its whole batch, so they are settled here instead of sent to GX.
    """
    return not_evaluable_on(config, dict(zip(frame.columns, frame.dtypes, strict=True)))


def not_evaluable_on(config: Mapping[str, Any], dtypes: Mapping[str, Any]) -> FailedCheck | None:
    """`not_evaluable` from the column types alone (a month read in chunks has no one frame)."""
    kind = config["type"]
    kwargs = config.get("kwargs", {})
    column = _primary_column(kwargs)
    referenced = referenced_columns(kwargs)
    missing = [c for c in referenced if c not in dtypes]
    if missing:
        if column in missing:
            problem = "column is missing"
        else:
            verb = "is" if len(missing) == 1 else "are"
            problem = f"not evaluated: {join_words(missing)} {verb} missing"
        return FailedCheck(column, kind, problem, None)
    if kind in TYPE_AGNOSTIC:
        return None
    for name in referenced:
        if name in schema.NUMERIC_COLUMNS and not is_numeric_dtype(dtypes[name]):
            subject = "column" if name == column else name
            problem = f"not evaluated: {subject} is not numeric (got {dtypes[name]})"
            return FailedCheck(column, kind, problem, None)
    return None


class DataFacts(Protocol):
    """What a failure's description needs from the data besides GX's counts (never values)."""

    def columns(self) -> Sequence[str]:
        """The column names, in order."""
        ...

    def dtype(self, column: str) -> Any:
        """The column's dtype."""
        ...

    def wrong_type_values(self, column: str, *, integer: bool) -> int:
        """How many cells of a numeric column are not numbers (see `count_wrong_type`)."""
        ...

    def present(self, column: str, values: Sequence[Any]) -> set[Any]:
        """Which of `values` (the suite's) occur in the column."""
        ...

    def labels(self, column: str) -> frozenset[str] | None:
        """The column's distinct values if all are label spellings (`label_spellings`)."""
        ...


class FrameFacts:
    """`DataFacts` of one frame, computed only for the failures being described."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def columns(self) -> Sequence[str]:
        return [str(c) for c in self._frame.columns]

    def dtype(self, column: str) -> Any:
        return self._frame[column].dtype

    def wrong_type_values(self, column: str, *, integer: bool) -> int:
        bad, present = count_wrong_type(self._frame[column], integer=integer)
        return bad or present  # numbers all, yet the wrong dtype: every value counts

    def present(self, column: str, values: Sequence[Any]) -> set[Any]:
        observed = set(self._frame[column].dropna().unique())
        return {v for v in values if v in observed}

    def labels(self, column: str) -> frozenset[str] | None:
        return column_spellings(self._frame[column]) if column in self._frame else None


def describe_failure(result: ExpectationValidationResult, frame: pd.DataFrame) -> FailedCheck:
    """Translate one failed GX result into counts and domains only."""
    config = result.expectation_config
    assert config is not None  # GX always attaches the configuration it ran
    return describe_outcome(
        config.to_json_dict(),
        dict(result.result or {}),
        raised_exception_types(result),
        FrameFacts(frame),
    )


def describe_outcome(
    as_json: Mapping[str, Any],
    outcome: Mapping[str, Any],
    raised: list[str] | None,
    facts: DataFacts,
) -> FailedCheck:
    """`describe_failure` from its parts: the expectation's JSON, GX's result counts, the
    exception types GX caught, and what else is known of the data (one frame or a month)."""
    kind: str = as_json["type"]
    kwargs: Mapping[str, Any] = as_json.get("kwargs") or {}
    meta: Mapping[str, Any] = as_json.get("meta") or {}
    column = _primary_column(kwargs)
    if raised is not None:
        return FailedCheck(column, kind, f"not evaluated: GX raised {join_words(raised)}", None)

    count = _as_count(outcome.get("unexpected_count"))
    percent = _as_float(outcome.get("unexpected_percent"))
    where = _describe_condition(kwargs.get("row_condition"))
    mostly = kwargs.get("mostly")
    allowed = f", at most {as_percent(100 * (1 - mostly))} allowed" if mostly is not None else ""

    if column == schema.TARGET and kind in _LABEL_CHECKS:
        encoding = _target_encoding(kind, meta, facts)
        if encoding is not None:
            return FailedCheck(column, kind, encoding, count)
    if kind == "expect_table_columns_to_match_set":
        return FailedCheck(None, kind, describe_column_mismatch(kwargs, facts.columns()), None)
    if kind == "expect_table_row_count_to_be_between":
        observed = _as_count(outcome.get("observed_value")) or 0
        bounds = _describe_bounds(kwargs.get("min_value"), kwargs.get("max_value"))
        return FailedCheck(None, kind, f"{observed:,} rows, expected {bounds}", None)
    if kind == "expect_column_values_to_be_in_type_list":
        expected = "integer" if all("int" in t.lower() for t in kwargs["type_list"]) else "numeric"
        if column is None or column not in facts.columns():
            return FailedCheck(column, kind, f"values of wrong type (expected {expected})", count)
        # GX counts every row of a column whose dtype is wrong; a person needs the values that
        # are not numbers (text left by the parse), so those are counted here.
        bad = facts.wrong_type_values(column, integer=expected == "integer")
        return FailedCheck(
            column,
            kind,
            f"{plural(bad, 'value')} of wrong type (expected {expected}, got "
            f"{facts.dtype(column)})",
            bad,
        )
    if kind == "expect_column_values_to_be_in_set" and "churn_rate_bound" in meta:
        return FailedCheck(column, kind, _describe_rate(meta, kwargs, percent), count)
    if kind == "expect_column_values_to_not_be_null":
        return FailedCheck(
            column,
            kind,
            f"{plural(count or 0, 'null value')} ({as_percent(percent)}){allowed}",
            count,
        )
    if kind == "expect_column_values_to_be_unique":
        return FailedCheck(
            column, kind, f"{plural(count or 0, 'row')} share their value with another row", count
        )
    if kind == "expect_column_values_to_be_in_set":
        domain = _describe_domain(kwargs["value_set"])
        return FailedCheck(
            column, kind, f"{plural(count or 0, 'value')} outside {domain}{where}{allowed}", count
        )
    if kind == "expect_column_values_to_be_between":
        bounds = _describe_bounds(kwargs.get("min_value"), kwargs.get("max_value"))
        return FailedCheck(
            column, kind, f"{plural(count or 0, 'value')} outside {bounds}{where}{allowed}", count
        )
    if kind == "expect_column_distinct_values_to_contain_set":
        # Name only the suite's values that are absent, never the observed ones.
        values = list(kwargs["value_set"])
        present = (
            facts.present(column, values)
            if column is not None and column in facts.columns()
            else set()
        )
        absent = [v for v in values if v not in present]
        domain = _describe_domain(kwargs["value_set"])
        return FailedCheck(
            column, kind, f"{_describe_domain(absent)} never occurs (needs all of {domain})", None
        )
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        sign = "<" if kwargs.get("or_equal") else "<="
        pair = f"{kwargs['column_A']} {sign} {kwargs['column_B']}"
        return FailedCheck(
            column,
            kind,
            f"{plural(count or 0, 'row')} ({as_percent(percent)}) with {pair}{where}{allowed}",
            count,
        )
    if count is not None:
        return FailedCheck(
            column, kind, f"{plural(count or 0, 'unexpected value')}{where}{allowed}", count
        )
    return FailedCheck(column, kind, "check failed", None)


#: The target's checks that labels in another encoding fail (the rate bands are in-set checks).
_LABEL_CHECKS = frozenset(
    {"expect_column_values_to_be_in_set", "expect_column_distinct_values_to_contain_set"}
)


def _target_encoding(kind: str, meta: Mapping[str, Any], facts: DataFacts) -> str | None:
    """The target's labels named when they are Yes/No in another encoding (0/1, true/false,
    yes/no): for every check of its values when none is Yes/No (the rates and counts say
    nothing then), for the domain check alone when some are (the rates are then real)."""
    if schema.TARGET not in facts.columns():
        return None
    spellings = facts.labels(schema.TARGET)
    encoding = describe_encoding(spellings)
    if encoding is None or spellings is None:
        return None
    mixed = bool(spellings & {schema.POSITIVE_LABEL, schema.NEGATIVE_LABEL})
    domain = kind == "expect_column_values_to_be_in_set" and "churn_rate_bound" not in meta
    return None if mixed and not domain else encoding


def count_wrong_type(values: pd.Series, *, integer: bool) -> tuple[int, int]:
    """(cells that are not numbers, or not whole for integers; cells not null).

    Blanks are the null check's. Both counts add up over the chunks of a month.
    """
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    bad = int(numbers.isna().sum())
    if integer:
        bad += int(((numbers.dropna() % 1) != 0).sum())
    return bad, len(present)


def raised_exception_types(result: ExpectationValidationResult) -> list[str] | None:
    """Exception class names GX caught while computing this result, or None if none were."""
    info = result.exception_info or {}
    entries: list[Mapping[str, Any]]
    if "raised_exception" in info:  # the flat form GX uses when nothing went wrong at metric level
        entries = [info]
    else:  # keyed by metric id when a metric failed
        entries = [v for v in info.values() if isinstance(v, Mapping)]
    names: list[str] = []
    for entry in entries:
        traceback_text = entry.get("exception_traceback") or ""
        if not (entry.get("raised_exception") or traceback_text):
            continue
        # The first unindented "Name: ..." line is the root cause (GX wraps it in
        # MetricResolutionError); the message after the colon may quote data and is dropped.
        causes = [
            m.group(1).rsplit(".", 1)[-1]
            for line in traceback_text.splitlines()
            if (m := re.match(r"([A-Za-z_][\w.]*)(?::|$)", line)) and m.group(1) != "Traceback"
        ]
        name = causes[0] if causes else "an exception"
        if name not in names:
            names.append(name)
    return names or None


def _describe_rate(
    meta: Mapping[str, Any], kwargs: Mapping[str, Any], percent: float | None
) -> str:
    """Churn-rate band checks are in-set checks whose 'mostly' bounds the share of one label."""
    unexpected = percent or 0.0
    mostly = float(kwargs.get("mostly", 1.0))
    if meta["churn_rate_bound"] == "min":
        return f"churn rate {as_percent(100 - unexpected)} is below the {as_percent(100 * mostly)} floor"
    return (
        f"churn rate {as_percent(unexpected)} is above the {as_percent(100 * (1 - mostly))} ceiling"
    )


def _describe_condition(condition: Any) -> str:
    """Render a serialized GX row_condition such as `tenure > 0` (suite values, not data)."""
    if not condition:
        return ""
    if isinstance(condition, Mapping) and condition.get("type") == "comparison":
        name = (condition.get("column") or {}).get("name")
        return f" where {name} {condition.get('operator')} {condition.get('parameter')!r}"
    return " on the rows the suite's row_condition selects"


def _primary_column(kwargs: Mapping[str, Any]) -> str | None:
    for key in ("column", "column_A"):
        if isinstance(kwargs.get(key), str):
            return str(kwargs[key])
    return None


def referenced_columns(kwargs: Mapping[str, Any]) -> list[str]:
    """Every column an expectation reads, including those inside its row_condition."""
    names: list[str] = []
    for key in ("column", "column_A", "column_B"):
        if isinstance(kwargs.get(key), str):
            names.append(kwargs[key])
    names.extend(c for c in kwargs.get("column_list") or [] if isinstance(c, str))
    names.extend(_condition_columns(kwargs.get("row_condition")))
    return list(dict.fromkeys(names))


def _condition_columns(condition: Any) -> Iterator[str]:
    if isinstance(condition, Mapping):
        column = condition.get("column")
        if isinstance(column, Mapping) and isinstance(column.get("name"), str):
            yield column["name"]
        for value in condition.values():
            if isinstance(value, (Mapping, list)):
                yield from _condition_columns(value)
    elif isinstance(condition, list):
        for item in condition:
            yield from _condition_columns(item)


def is_numeric_dtype(dtype: Any) -> bool:
    """Numbers as the suite means them: numeric, not boolean."""
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def ordered_failures(failures: list[FailedCheck]) -> list[FailedCheck]:
    """Table-level first, then columns in schema order, so messages read the same every month."""
    position = {name: i for i, name in enumerate(schema.COLUMNS)}
    return sorted(
        failures,
        key=lambda f: (f.column is not None, position.get(f.column or "", len(position))),
    )


def _describe_domain(values: Sequence[Any]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def _describe_bounds(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"[{number(low)}, {number(high)}]"
    if low is not None:
        return f"at least {number(low)}"
    return f"at most {number(high)}"


def _as_count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
