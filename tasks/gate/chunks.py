"""Validate a month in chunks, in bounded memory, with the report a whole-frame run gives.

The suite runs on each chunk (`validate_chunk`, a plain function returning a small, picklable
`ChunkResult`, `tasks.gate.chunk_suite`), and `combine` (`tasks.gate.combine`) turns the
chunks' results into the month's `ValidationReport`:

- row-by-row expectations (nulls, domains, ranges, the cross-column rules, the churn-rate
  bands) add up: GX's element, missing and unexpected counts are summed, and success and
  percentages are recomputed on the month's totals exactly as GX computes them;
- what needs the whole month is computed over the whole month: the row count, the column set
  and types (a column's type is the month's, e.g. text in one chunk makes it text), values
  that must occur somewhere (`distinct_values_to_contain_set`), and unique customer IDs,
  checked across chunks on 64-bit hashes of the IDs (8 bytes a customer).

`tasks.gate.stream.validate_parquet` reads a Parquet file or folder batch by batch, types each
batch as the loader does (`check_typed_frame`) and validates it, so a month of any size needs
the memory of one chunk. `check_in_chunks` does the same for a frame already in memory, and
`validate_frame` is the gate's task for that, faster than the
whole-frame `check_snapshot`: the suite's string columns go to GX as categoricals, and GX's
cost per row grows with the chunk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.data.labels import column_spellings
from tasks.data.schema import TARGET
from tasks.gate.chunk_suite import (
    CONTAINS,
    DEFAULT_CHUNK_ROWS,
    TYPE_LIST,
    UNIQUE,
    ChunkResult,
    ChunkSuite,
    Outcome,
    RawColumn,
    as_count,
    chunk_suite,
    integer_types,
    refuse_unchunkable,
    unchunkable_expectations,
)
from tasks.gate.combine import combine
from tasks.gate.failures import (
    count_wrong_type,
    not_evaluable_on,
    raised_exception_types,
    referenced_columns,
)
from tasks.gate.masked import masked_expectations, masked_frame, unmasked
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
    check_snapshot,
    raise_if_rejected,
    run_expectations,
)
from tasks.messages import normalise_name
from tasks.steps import step

#: Expectations that only compare values for equality: a categorical column gives GX the same
#: answer as text, at a fraction of the cost (codes instead of a million Python strings).
_EQUALITY = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
    }
)


_EQUALITY_OPERATORS = frozenset({"==", "!=", "IN", "NOT_IN"})


logger = logging.getLogger(__name__)


def validate_chunk(
    frame: pd.DataFrame,
    *,
    raw: pd.DataFrame | None = None,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
) -> ChunkResult:
    """Run the suite on one chunk of a month, typed as the loader types it.

    `raw` is the chunk before typing (a Parquet batch as pyarrow gave it): with it, numeric
    columns that arrived as text are also counted as text, for a month whose column turns out
    to hold text elsewhere. Never raises for bad data; `combine` makes the month's report.
    """
    suite = chunk_suite(suite_path, for_scoring)
    refuse_unchunkable(suite)
    columns = tuple(frame.columns)
    if frame.columns.duplicated().any():  # as check_snapshot: the first copy of each name
        frame = frame.iloc[:, [i for i, dup in enumerate(frame.columns.duplicated()) if not dup]]
    dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
    runnable = [
        i
        for i, role in enumerate(suite.roles)
        if role in ("schema", "type", "rows") and not_evaluable_on(suite.configs[i], dtypes) is None
    ]
    outcomes: dict[int, Outcome] = {}
    crashed: str | None = None
    if runnable:
        configs = [suite.configs[i] for i in runnable]
        expectations = [suite.expectations[i] for i in runnable]
        masked = masked_expectations(expectations)
        try:
            gx_frame = _for_gx(frame, configs)
            copies, outside = masked_frame(gx_frame, masked)
            # Two GX runs: the chunk's own columns for the others, the masked copies for these.
            results = run_expectations(
                gx_frame, [e for j, e in enumerate(expectations) if j not in outside]
            )
            if outside:
                results += run_expectations(copies, [masked[j].expectation for j in outside])
            run_configs = [
                masked[j].expectation.configuration.to_json_dict() if j in outside else configs[j]
                for j in range(len(expectations))
            ]
        except Exception as exc:
            # Only the type: GX messages can quote cell values.
            logger.warning("GX validation of a chunk crashed: %s", type(exc).__name__)
            crashed = type(exc).__name__
        else:
            outcomes = _matched(results, runnable, run_configs)
            for j, rows in outside.items():
                if runnable[j] in outcomes:
                    outcomes[runnable[j]] = unmasked(outcomes[runnable[j]], rows)
    return ChunkResult(
        suite=suite.digest,
        rows=len(frame),
        columns=columns,
        dtypes=dtypes,
        outcomes=outcomes,
        crashed=crashed,
        **_chunk_facts(frame, raw, suite),
    )


def check_chunks(
    chunks: Iterable[pd.DataFrame],
    *,
    source: str,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
) -> ValidationReport:
    """Validate a month given as typed chunks (all with the same columns); never raises for
    bad data. Only one chunk's frame is held at a time if `chunks` is an iterator."""
    results = [
        validate_chunk(chunk, suite_path=suite_path, for_scoring=for_scoring) for chunk in chunks
    ]
    return combine(results, source=source, suite_path=suite_path, for_scoring=for_scoring)


def check_in_chunks(
    frame: pd.DataFrame,
    *,
    source: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
) -> ValidationReport:
    """`check_snapshot`'s report for a frame in memory, the suite run on `chunk_rows` at a time."""
    return check_chunks(
        frame_chunks(frame, chunk_rows), source=source, suite_path=suite_path,
        for_scoring=for_scoring,
    )  # fmt: skip


def frame_chunks(frame: pd.DataFrame, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Consecutive slices of `chunk_rows` rows (views, not copies); one if the frame is empty."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    for start in range(0, max(len(frame), 1), chunk_rows):
        yield frame.iloc[start : start + chunk_rows]


def _key(config: Mapping[str, Any]) -> str:
    # GX adds the batch's id to the arguments of the configuration it returns.
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    return json.dumps([config.get("type"), kwargs], sort_keys=True, default=str)


def _matched(
    results: Sequence[Any], runnable: list[int], configs: list[dict[str, Any]]
) -> dict[int, Outcome]:
    """GX's results by suite position (matched on type and arguments, not trusted by order)."""
    waiting: dict[str, list[int]] = {}
    for i, config in zip(runnable, configs, strict=True):
        waiting.setdefault(_key(config), []).append(i)
    outcomes: dict[int, Outcome] = {}
    for result in results:
        config = result.expectation_config
        positions = waiting.get(_key(config.to_json_dict())) if config is not None else None
        if not positions:
            continue
        counts = dict(result.result or {})
        raised = raised_exception_types(result)
        outcomes[positions.pop(0)] = Outcome(
            success=bool(result.success),
            element_count=as_count(counts.get("element_count")),
            missing_count=as_count(counts.get("missing_count")),
            unexpected_count=as_count(counts.get("unexpected_count")),
            raised=tuple(raised) if raised else None,
        )
    return outcomes


def _for_gx(frame: pd.DataFrame, configs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The chunk as GX gets it: text columns only compared for equality as categoricals, and
    text columns only checked for nulls (the customer ID) as their null mask.

    GX filters the whole frame once per metric of a row-conditioned expectation and tests
    membership per cell: on one-byte codes both are several times cheaper than on Python
    strings, and the counts are the same.
    """
    unsafe: set[str] = set()  # compared otherwise than for equality: left as they are
    compared: set[str] = set()  # read for more than their nulls
    for config in configs:
        kwargs = dict(config.get("kwargs") or {})
        condition = kwargs.pop("row_condition", None)
        if condition:
            if not _equality_only(condition, unsafe):
                return frame  # a condition this cannot read: leave every column as it is
            compared.update(referenced_columns({"row_condition": condition}))
        names = referenced_columns(kwargs)
        if config["type"] != "expect_column_values_to_not_be_null":
            compared.update(names)
        if config["type"] not in _EQUALITY:
            unsafe.update(names)
    converted: dict[Any, Any] = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype != object or name in unsafe or not len(values):
            continue
        if name not in compared:
            codes = np.where(values.isna().to_numpy(), -1, 0).astype(np.int8)
            converted[name] = pd.Categorical.from_codes(codes, categories=pd.Index(["present"]))  # type: ignore[arg-type]
        elif pd.api.types.infer_dtype(values, skipna=True) == "string":
            # Strings only: factorize would make one category of 1, 1.0 and True.
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            converted[name] = pd.Categorical.from_codes(codes, categories=pd.Index(uniques))  # type: ignore[arg-type]
    if not converted:
        return frame
    columns = {name: converted.get(name, frame[name]) for name in frame.columns}
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _equality_only(condition: Any, unsafe: set[str]) -> bool:
    """False for a row condition in a form not known here; columns compared otherwise than
    for equality go into `unsafe`."""
    if not isinstance(condition, Mapping):
        return False
    kind = condition.get("type")
    if kind in ("and", "or"):
        return all(_equality_only(c, unsafe) for c in condition.get("conditions") or [])
    column = (condition.get("column") or {}).get("name")
    if kind == "nullity" and isinstance(column, str):
        return True
    if kind == "comparison" and isinstance(column, str):
        if str(condition.get("operator")) not in _EQUALITY_OPERATORS:
            unsafe.add(column)
        return True
    return False


def _chunk_facts(
    frame: pd.DataFrame, raw: pd.DataFrame | None, suite: ChunkSuite
) -> dict[str, Any]:
    """What `combine` needs besides GX's counts: type, presence and uniqueness facts."""
    wrong_type: dict[tuple[str, bool], tuple[int, int]] = {}
    raw_columns: dict[str, RawColumn] = {}
    found: dict[int, tuple[Any, ...]] = {}
    nulls: dict[str, int] = {}
    id_hashes: dict[str, np.ndarray] = {}
    for i, config in enumerate(suite.configs):
        kwargs = config.get("kwargs") or {}
        column = kwargs.get("column")
        if not isinstance(column, str) or column not in frame.columns:
            continue
        kind = config["type"]
        if kind == TYPE_LIST:
            integer = integer_types(kwargs)
            wrong_type[(column, integer)] = count_wrong_type(frame[column], integer=integer)
            text = _raw_text(raw, column) if frame[column].dtype != object else None
            if text is not None:
                before = raw_columns.get(column)
                counts = {**(before.wrong_type if before else {})}
                counts[integer] = count_wrong_type(text, integer=integer)
                raw_columns[column] = RawColumn(nulls=int(text.isna().sum()), wrong_type=counts)
        elif kind == CONTAINS:
            observed = set(frame[column].dropna().unique())
            found[i] = tuple(v for v in kwargs.get("value_set") or [] if v in observed)
        elif kind == UNIQUE and column not in id_hashes:
            values = frame[column]
            present = values.dropna()
            nulls[column] = len(values) - len(present)
            id_hashes[column] = pd.util.hash_pandas_object(present, index=False).to_numpy()
    # The target's labels, if spelled otherwise than Yes/No, are named in the month's report.
    spellings = column_spellings(frame[TARGET]) if TARGET in frame.columns else None
    return {
        "wrong_type": wrong_type,
        "raw": raw_columns,
        "found": found,
        "nulls": nulls,
        "id_hashes": id_hashes,
        "labels": None if spellings is None else tuple(sorted(spellings)),
    }


def _raw_text(raw: pd.DataFrame | None, column: str) -> pd.Series | None:
    """The column before typing, if it arrived as text (the loader renames `tenure ` etc.)."""
    if raw is None:
        return None
    names = [c for c in raw.columns if c == column] or [
        c for c in raw.columns if normalise_name(c) == normalise_name(column)
    ]
    if len(names) != 1:
        return None
    values = raw[names[0]]
    return values if values.dtype == object else None


# NO_CACHE (a `step`): the gate runs every time, as `validate_snapshot`.
@step("validate-snapshot")
def validate_frame(
    frame: pd.DataFrame,
    *,
    source: str,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ValidationReport:
    """`validate_snapshot` with the suite run on `chunk_rows` at a time (`check_in_chunks`):
    the same report and rejection, in less time. A suite with an expectation that needs the
    whole frame at once (a column mean, say) is run on the whole frame instead."""
    if unchunkable_expectations(suite_path, for_scoring=for_scoring):
        report = check_snapshot(
            frame, source=source, suite_path=suite_path, for_scoring=for_scoring
        )
    else:
        report = check_in_chunks(
            frame, source=source, chunk_rows=chunk_rows, suite_path=suite_path,
            for_scoring=for_scoring,
        )  # fmt: skip
    return raise_if_rejected(report)
