"""A month's `ValidationReport` from its chunks' results (`tasks.gate.chunks`): what
`check_snapshot` says of the whole month."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.data.schema import TARGET
from tasks.gate.chunk_suite import (
    CONTAINS,
    ROW_COUNT,
    TYPE_LIST,
    UNIQUE,
    ChunkResult,
    ChunkSuite,
    Outcome,
    chunk_suite,
    integer_types,
    refuse_unchunkable,
)
from tasks.gate.failures import (
    FailedCheck,
    describe_outcome,
    not_evaluable_on,
    ordered_failures,
)
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
    closing_guards,
    duplicated_names_guard,
)


def combine(
    results: Iterable[ChunkResult],
    *,
    source: str,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
) -> ValidationReport:
    """The month's report from its chunks' results: what `check_snapshot` says of the whole."""
    chunks = list(results)
    if not chunks:
        raise ValueError("no chunks to combine: a month has at least one chunk, maybe empty")
    suite = chunk_suite(suite_path, for_scoring)
    refuse_unchunkable(suite)
    first = chunks[0]
    for chunk in chunks:
        if chunk.suite != suite.digest:
            raise ValueError("a chunk was validated against another suite than this one")
        if chunk.columns != first.columns:
            raise ValueError("the chunks of one month must have the same columns, in order")
    rows = sum(c.rows for c in chunks)
    failures: list[FailedCheck] = []
    guard = duplicated_names_guard(first.columns)
    if guard is not None:
        failures.append(guard)
    names = list(first.dtypes)
    dtypes = month_dtypes(chunks)

    runnable: list[int] = []
    skipped: list[FailedCheck] = []
    for i, config in enumerate(suite.configs):
        reason = not_evaluable_on(config, dtypes)
        if reason is None:
            runnable.append(i)
        else:
            skipped.append(reason)

    outcomes: dict[int, Outcome] = {}
    crashed = next((c.crashed for c in chunks if c.crashed), None)
    if crashed and runnable:
        failures.append(
            FailedCheck(None, "guard:validation_ran", f"validation crashed: {crashed}", None)
        )
    else:
        for i in runnable:
            outcome = _month_outcome(i, suite, chunks, dtypes, rows)
            if outcome is not None:
                outcomes[i] = outcome
    facts = _MonthFacts.of(chunks, names, dtypes, suite)
    failures.extend(
        describe_outcome(
            suite.configs[i],
            outcomes[i].as_result(),
            list(outcomes[i].raised or ()) or None,
            facts,
        )
        for i in _in_gx_order(list(outcomes), suite, outcomes)
        if not outcomes[i].success
    )
    failures.extend(skipped)
    accounted = len(outcomes) + len(skipped)
    failures.extend(
        closing_guards(rows, accounted, len(suite.configs), failures, ran=bool(outcomes))
    )
    return ValidationReport(
        source=source, rows=rows, evaluated=accounted, failures=tuple(ordered_failures(failures))
    )


def _in_gx_order(
    positions: Sequence[int], suite: ChunkSuite, outcomes: Mapping[int, Outcome]
) -> list[int]:
    """Suite positions in the order GX returns results, which orders a column's failures.

    GX groups a suite by its `column` argument, groups in first-seen order (entries without
    one form a group where the first is), and puts results that raised first.
    """
    groups: dict[str, list[int]] = {}
    for i in positions:
        column = (suite.configs[i].get("kwargs") or {}).get("column")
        groups.setdefault(column if isinstance(column, str) else "_nocolumn", []).append(i)
    ordered = [i for group in groups.values() for i in group]
    return sorted(ordered, key=lambda i: outcomes[i].raised is None)


def month_dtypes(chunks: Sequence[ChunkResult]) -> dict[Any, Any]:
    """Each column's dtype in the month the chunks make up, as a whole read types it."""
    return {name: _common_dtype([c.dtypes[name] for c in chunks]) for name in chunks[0].dtypes}


def _common_dtype(dtypes: Sequence[Any]) -> Any:
    """The dtype a whole-month frame would have: int64 and float64 chunks make float64, any
    text makes text (the loader keeps a numeric column as text when one cell is not a number)."""
    first = dtypes[0]
    if all(d == first for d in dtypes):
        return first
    if all(isinstance(d, np.dtype) and d.kind in "iuf" for d in dtypes):
        return np.result_type(*dtypes)
    return np.dtype(object)


def _month_outcome(
    i: int, suite: ChunkSuite, chunks: Sequence[ChunkResult], dtypes: Mapping[Any, Any], rows: int
) -> Outcome | None:
    """Expectation `i` judged on the whole month, or None if a chunk gave it no result."""
    config = suite.configs[i]
    kind, role = config["type"], suite.roles[i]
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column")
    if role == "schema":
        return chunks[0].outcomes.get(i)
    if kind == ROW_COUNT:
        return Outcome(success=_within(rows, kwargs), observed_value=rows)
    if kind == CONTAINS:
        found = {v for c in chunks for v in c.found.get(i, ())}
        return Outcome(success=all(v in found for v in kwargs.get("value_set") or []))
    if kind == UNIQUE:
        name = str(column)
        nulls = sum(c.nulls.get(name, 0) for c in chunks)
        shared = _shared_hashes([c.id_hashes[name] for c in chunks if name in c.id_hashes])
        return _map_outcome(rows, nulls, shared, kwargs, None)
    month_dtype = dtypes.get(column) if isinstance(column, str) else None
    if kind == TYPE_LIST and month_dtype != np.dtype(object):
        # Judged on the dtype: every chunk holding the month's dtype says the same.
        same = [c.outcomes.get(i) for c in chunks if c.dtypes.get(column) == month_dtype]
        if any(o is None for o in same):
            return None
        judged = [o for o in same if o is not None]
        return Outcome(success=all(o.success for o in judged), raised=_raised(judged))
    parts: list[Outcome] = []
    for chunk in chunks:
        outcome = _as_month_typed(chunk, i, kind, column, kwargs, month_dtype)
        if outcome is None:
            return None
        parts.append(outcome)
    raised = _raised(parts)
    if raised:
        return Outcome(success=False, raised=raised)
    missing = [o.missing_count for o in parts]
    unexpected = [o.unexpected_count for o in parts]
    return _map_outcome(
        sum(o.element_count or 0 for o in parts),
        None if any(m is None for m in missing) else sum(m or 0 for m in missing),
        None if any(u is None for u in unexpected) else sum(u or 0 for u in unexpected),
        kwargs,
        None,
    )


def _as_month_typed(
    chunk: ChunkResult, i: int, kind: str, column: Any, kwargs: Mapping[str, Any], month: Any
) -> Outcome | None:
    """A chunk's counts for a map expectation, as they are with the column typed as the month's.

    A chunk whose numbers the typing parsed, in a month whose column stays text, is counted on
    its raw cells: a blank is then text, not a null, and every cell is of the wrong type.
    """
    if month == np.dtype(object) and chunk.dtypes.get(column) != np.dtype(object):
        raw = chunk.raw.get(column)
        if kind == "expect_column_values_to_not_be_null":
            nulls = raw.nulls if raw is not None else None
            if nulls is None:
                return chunk.outcomes.get(i)
            return Outcome(success=True, element_count=chunk.rows, unexpected_count=nulls)
        if kind == TYPE_LIST:
            integer = integer_types(kwargs)
            if raw is not None and integer in raw.wrong_type:
                present = raw.wrong_type[integer][1]
            else:
                present = chunk.wrong_type.get((column, integer), (0, chunk.rows))[1]
            # Text cells are strings, never of a numeric type.
            return Outcome(
                success=present == 0,
                element_count=chunk.rows,
                missing_count=chunk.rows - present,
                unexpected_count=present,
            )
    return chunk.outcomes.get(i)


def _map_outcome(
    element: int,
    missing: int | None,
    unexpected: int | None,
    kwargs: Mapping[str, Any],
    raised: tuple[str, ...] | None,
) -> Outcome:
    """Success and percentage of a map expectation from its counts, as GX computes them."""
    nonnull = element - missing if missing is not None else element
    mostly = kwargs.get("mostly")
    mostly = 1.0 if mostly is None else float(mostly)
    if unexpected is None or element == 0 or nonnull == 0:
        success = True  # vacuously, as GX says of no rows
    else:
        success = (float(nonnull) - float(unexpected)) / float(nonnull) >= mostly
    percent = None
    if unexpected is not None and element > 0 and nonnull > 0:
        percent = unexpected / nonnull * 100
    return Outcome(
        success=success,
        element_count=element,
        missing_count=missing,
        unexpected_count=unexpected,
        unexpected_percent=percent,
        raised=raised,
    )


def _within(value: int, kwargs: Mapping[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and (value <= low if kwargs.get("strict_min") else value < low):
        return False
    return not (high is not None and (value >= high if kwargs.get("strict_max") else value > high))


def _shared_hashes(parts: Sequence[np.ndarray]) -> int:
    """Rows whose hash another row also has: GX's count of non-unique values, month-wide.

    Two different IDs share a 64-bit hash with odds of about n^2 / 2^65 (1 in 370,000 for
    ten million customers), which would report two rows that do not share an ID.
    """
    every = np.concatenate(parts) if parts else np.array([], dtype=np.uint64)
    if len(every) < 2:
        return 0
    every.sort()
    same = every[1:] == every[:-1]
    shared = np.zeros(len(every), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    return int(shared.sum())


def _raised(outcomes: Sequence[Outcome]) -> tuple[str, ...] | None:
    names = [name for o in outcomes for name in (o.raised or ())]
    return tuple(dict.fromkeys(names)) or None


@dataclass(frozen=True)
class _MonthFacts:
    """`DataFacts` of a month from its chunks' facts."""

    names: tuple[str, ...]
    dtypes: Mapping[Any, Any]
    wrong: Mapping[tuple[str, bool], int]
    found: Mapping[str, frozenset[Any]]
    #: The target's distinct values over the month, if every chunk's are label spellings.
    target_labels: frozenset[str] | None

    @classmethod
    def of(
        cls,
        chunks: Sequence[ChunkResult],
        names: Sequence[Any],
        dtypes: Mapping[Any, Any],
        suite: ChunkSuite,
    ) -> _MonthFacts:
        totals: dict[tuple[str, bool], tuple[int, int]] = {}
        for chunk in chunks:
            for (column, integer), counts in chunk.wrong_type.items():
                raw = chunk.raw.get(column)
                if (
                    dtypes.get(column) == np.dtype(object)
                    and chunk.dtypes.get(column) != np.dtype(object)
                    and raw is not None
                    and integer in raw.wrong_type
                ):
                    counts = raw.wrong_type[integer]
                bad, present = totals.get((column, integer), (0, 0))
                totals[(column, integer)] = (bad + counts[0], present + counts[1])
        found: dict[str, set[Any]] = {}
        for chunk in chunks:
            for i, values in chunk.found.items():
                found.setdefault(str(suite.configs[i]["kwargs"]["column"]), set()).update(values)
        return cls(
            names=tuple(str(n) for n in names),
            dtypes=dtypes,
            wrong={key: bad or present for key, (bad, present) in totals.items()},
            found={column: frozenset(values) for column, values in found.items()},
            target_labels=(
                None
                if any(c.labels is None for c in chunks)
                else frozenset(label for c in chunks for label in c.labels or ())
            ),
        )

    def columns(self) -> Sequence[str]:
        return list(self.names)

    def dtype(self, column: str) -> Any:
        return self.dtypes[column]

    def wrong_type_values(self, column: str, *, integer: bool) -> int:
        return self.wrong.get((column, integer), 0)

    def present(self, column: str, values: Sequence[Any]) -> set[Any]:
        observed = self.found.get(column, frozenset())
        return {v for v in values if v in observed}

    def labels(self, column: str) -> frozenset[str] | None:
        return self.target_labels if column == TARGET else None
