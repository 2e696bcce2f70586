"""The suite as the chunked validation sees it: each expectation's role, and what a chunk's
result holds (counts, never values). See `tasks.gate.chunks`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    load_suite,
)

#: Rows per chunk. GX spends ~0.5 s per call setting the suite up, whatever the rows, which
#: dominates below ~100,000 rows (1M rows: 6.6 s in 125k-row chunks, ~5 s in 250k to 1M, 14.6 s
#: whole); a quarter million keeps that small and one chunk's frames to a few hundred MB.
DEFAULT_CHUNK_ROWS = 250_000


ROW_COUNT = "expect_table_row_count_to_be_between"


UNIQUE = "expect_column_values_to_be_unique"


CONTAINS = "expect_column_distinct_values_to_contain_set"


TYPE_LIST = "expect_column_values_to_be_in_type_list"


#: Expectations on the table's shape: every chunk of a month has the same columns.
SCHEMA_KINDS = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_column_to_exist",
    }
)


#: Map expectations whose verdict on a row depends on other rows: they do not add up.
CROSS_ROW = frozenset(
    {
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_decreasing",
        "expect_compound_columns_to_be_unique",
        "expect_multicolumn_values_to_be_unique",
    }
)


@dataclass(frozen=True)
class Outcome:
    """One expectation's result on one chunk or on the month: counts, never values."""

    success: bool
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: int | None = None
    raised: tuple[str, ...] | None = None

    def as_result(self) -> dict[str, Any]:
        """The fields of a GX result that `describe_outcome` reads."""
        return {
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "observed_value": self.observed_value,
        }


@dataclass(frozen=True)
class RawColumn:
    """A numeric column as it arrived as text, before typing made numbers of it.

    If another chunk holds text that is not a number, the month's column stays text and the
    suite judges these raw cells, as a whole-frame read would.
    """

    nulls: int
    wrong_type: dict[bool, tuple[int, int]]


@dataclass(frozen=True)
class ChunkResult:
    """What the suite found in one chunk of a month: small, picklable, no data values.

    The only per-row part is `id_hashes` (8 bytes per row for each column that must be unique).
    """

    suite: str
    rows: int
    columns: tuple[Any, ...]
    dtypes: dict[Any, Any]
    outcomes: dict[int, Outcome]
    #: The exception type GX raised on the chunk, if it crashed.
    crashed: str | None = None
    wrong_type: dict[tuple[str, bool], tuple[int, int]] = field(default_factory=dict)
    raw: dict[str, RawColumn] = field(default_factory=dict)
    found: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    #: The target's distinct values if all are label spellings (`label_spellings`), else None.
    labels: tuple[str, ...] | None = None
    #: Not compared by `==` (arrays); compare them with numpy.
    id_hashes: dict[str, np.ndarray] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ChunkSuite:
    digest: str
    expectations: tuple[Any, ...]
    configs: tuple[dict[str, Any], ...]
    roles: tuple[str, ...]


def unchunkable_expectations(
    suite_path: Path = DEFAULT_SUITE_PATH, *, for_scoring: bool = False
) -> list[str]:
    """Expectation types of the suite that `combine` cannot judge from chunks (a column mean,
    an ordering across rows, ...): such a suite needs `check_snapshot` on the whole frame."""
    suite = chunk_suite(suite_path, for_scoring)
    return list(
        dict.fromkeys(
            c["type"] for c, role in zip(suite.configs, suite.roles, strict=True) if role == "no"
        )
    )


def chunk_suite(path: Path, for_scoring: bool) -> ChunkSuite:
    path = Path(path)
    if not path.is_file():
        load_suite(path, for_scoring=for_scoring)  # raises the suite's own message
    stat = path.stat()
    return _loaded_suite(str(path.resolve()), stat.st_mtime_ns, stat.st_size, for_scoring)


@lru_cache(maxsize=8)
def _loaded_suite(path: str, mtime_ns: int, size: int, for_scoring: bool) -> ChunkSuite:
    """The suite, parsed once per file version: chunks of a month share it."""
    del mtime_ns, size  # the cache key: an edited file is read again
    suite = load_suite(Path(path), for_scoring=for_scoring)
    expectations = tuple(suite.expectations)
    configs = tuple(e.configuration.to_json_dict() for e in expectations)
    text = json.dumps([for_scoring, configs], sort_keys=True, default=str)
    return ChunkSuite(
        digest=hashlib.sha256(text.encode()).hexdigest(),
        expectations=expectations,
        configs=configs,
        roles=tuple(_role(e, c) for e, c in zip(expectations, configs, strict=True)),
    )


def _role(expectation: Any, config: Mapping[str, Any]) -> str:
    """How an expectation's chunk results make the month's: see the module docstring."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    kind = config["type"]
    conditioned = bool((config.get("kwargs") or {}).get("row_condition"))
    if kind in SCHEMA_KINDS:
        return "schema"
    if kind in (ROW_COUNT, UNIQUE, CONTAINS):
        return "no" if conditioned else "month"
    if kind == TYPE_LIST:
        return "type"
    if kind not in CROSS_ROW and isinstance(
        expectation, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation
    ):
        return "rows"
    return "no"


def refuse_unchunkable(suite: ChunkSuite) -> None:
    kinds = [c["type"] for c, role in zip(suite.configs, suite.roles, strict=True) if role == "no"]
    if kinds:
        raise ValueError(
            f"the suite has expectations that cannot be judged chunk by chunk: {', '.join(kinds)}"
        )


def integer_types(kwargs: Mapping[str, Any]) -> bool:
    # As describe_outcome reads a type list: integers only, or any number.
    return all("int" in str(t).lower() for t in kwargs.get("type_list") or [])


def as_count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
