"""Run the Great Expectations suite (expectations/*.json) on a snapshot."""

from __future__ import annotations

import gc
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tasks.data import schema
from tasks.errors import SnapshotRejected
from tasks.gate.failures import (
    TABLE_KEY,
    FailedCheck,
    describe_failure,
    not_evaluable,
    ordered_failures,
    referenced_columns,
)
from tasks.messages import describe_names, plural
from tasks.steps import step
from tasks.target import DEFAULT_SUITE_PATH

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )
    from great_expectations.data_context import AbstractDataContext


# Only counts and percentages come back; raw values (partial_unexpected_list) are never produced.
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


# Validation flips process-wide switches (pandas copy-on-write, GX's current context, GX log level).
_GX_LOCK = threading.Lock()

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of running the suite on one snapshot."""

    source: str
    rows: int
    evaluated: int
    failures: tuple[FailedCheck, ...]

    @property
    def success(self) -> bool:
        """True when no expectation and no project guard failed."""
        return not self.failures

    def by_column(self) -> dict[str, list[FailedCheck]]:
        """Failures grouped by column, table-level ones under "(table)", in first-seen order."""
        groups: dict[str, list[FailedCheck]] = {}
        for failure in self.failures:
            groups.setdefault(failure.column or TABLE_KEY, []).append(failure)
        return groups

    def summary(self) -> str:
        """A one-liner on success; otherwise one line per column listing its distinct problems."""
        if self.success:
            return f"passed {self.evaluated}/{self.evaluated} expectations on {self.rows:,} rows"
        # Project guards are not suite entries; they join the count only when they fail.
        checks = self.evaluated + sum(
            1 for f in self.failures if f.expectation.startswith("guard:")
        )
        lines = [f"{len(self.failures)} of {checks} checks failed on {self.rows:,} rows"]
        for column, failures in self.by_column().items():
            problems: dict[str, int] = {}
            for failure in failures:
                problems[failure.problem] = problems.get(failure.problem, 0) + 1
            text = "; ".join(p if n == 1 else f"{p} ({n} checks)" for p, n in problems.items())
            lines.append(f"  {column}: {text}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for run records and alerts."""
        return {
            "source": self.source,
            "rows": self.rows,
            "evaluated": self.evaluated,
            "success": self.success,
            "failures": [asdict(f) for f in self.failures],
        }


def load_suite(
    path: Path = DEFAULT_SUITE_PATH, *, for_scoring: bool = False
) -> gx.ExpectationSuite:
    """Read the suite, refusing a missing, unparsable, empty or partly invalid file.

    `for_scoring` drops what only training data must satisfy (see `_scoring_entries`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expectation suite {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Expectation suite {path} is not readable JSON: {exc}") from exc
    entries = raw.get("expectations") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f"Expectation suite {path} has no expectations; an empty suite would pass any data"
        )
    if for_scoring:
        entries = _scoring_entries(entries)
        raw = {**raw, "expectations": entries}
    import great_expectations as gx

    try:
        with _quiet_gx_logs():
            suite = gx.ExpectationSuite(**raw)
    except Exception as exc:
        raise ValueError(f"Expectation suite {path} is not a valid GX 1.x suite: {exc}") from exc
    # GX logs and drops an entry whose type it does not know, instead of raising.
    if len(suite.expectations) != len(entries):
        known = {e.expectation_type for e in suite.expectations}
        dropped = sorted({str(e.get("type")) for e in entries if e.get("type") not in known})
        raise ValueError(
            f"Expectation suite {path}: GX accepted {len(suite.expectations)} of {len(entries)} "
            f"expectations; unknown or invalid: {', '.join(dropped) or 'see GX log'}"
        )
    return suite


def check_snapshot(
    frame: pd.DataFrame,
    *,
    source: str,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
) -> ValidationReport:
    """Run the suite on the frame; never raises for bad data, returns the report."""
    suite = load_suite(suite_path, for_scoring=for_scoring)
    expectations = list(suite.expectations)
    rows = len(frame)
    failures: list[FailedCheck] = []

    guard = duplicated_names_guard(frame.columns)
    if guard is not None:
        failures.append(guard)
        # GX would see a DataFrame where it expects a Series; judge the first copy of each.
        frame = frame.iloc[:, [i for i, dup in enumerate(frame.columns.duplicated()) if not dup]]

    runnable = []
    skipped: list[FailedCheck] = []
    for expectation in expectations:
        reason = not_evaluable(expectation.configuration.to_json_dict(), frame)
        if reason is None:
            runnable.append(expectation)
        else:
            skipped.append(reason)

    results: list[ExpectationValidationResult] = []
    if runnable:
        try:
            results = run_expectations(frame, runnable)
        except Exception as exc:
            # Only the type: GX messages can quote cell values.
            logger.warning("GX validation of %s crashed: %s", source, type(exc).__name__)
            failures.append(
                FailedCheck(
                    None, "guard:validation_ran", f"validation crashed: {type(exc).__name__}", None
                )
            )
    failures.extend(describe_failure(r, frame) for r in results if not r.success)
    failures.extend(skipped)

    accounted = len(results) + len(skipped)
    failures.extend(closing_guards(rows, accounted, len(expectations), failures, ran=bool(results)))
    return ValidationReport(
        source=source,
        rows=rows,
        evaluated=accounted,
        failures=tuple(ordered_failures(failures)),
    )


def duplicated_names_guard(columns: Iterable[Any]) -> FailedCheck | None:
    """The project guard for repeated column names, or None when every name is unique."""
    names = pd.Index(list(columns))
    duplicated = names[names.duplicated()]
    if not len(duplicated):
        return None
    return FailedCheck(
        None,
        "guard:unique_column_names",
        f"{plural(len(duplicated), 'duplicated column name')}: {describe_names(list(duplicated))}",
        None,
    )


def closing_guards(
    rows: int, accounted: int, expected: int, failures: Sequence[FailedCheck], *, ran: bool
) -> list[FailedCheck]:
    """The guards judged once the suite ran: every expectation answered, and some rows."""
    guards = []
    if ran and accounted != expected:
        guards.append(
            FailedCheck(
                None,
                "guard:all_expectations_evaluated",
                f"only {accounted} of {expected} expectations produced a result",
                None,
            )
        )
    if rows == 0 and not any(
        f.expectation == "expect_table_row_count_to_be_between" for f in failures
    ):
        # GX map expectations pass on zero rows; keep that true even if the suite loses its row floor.
        guards.append(FailedCheck(None, "guard:has_rows", "snapshot has no rows", 0))
    return guards


# NO_CACHE: a gate must run every time (the suite may have changed), and hashing a large
# frame for the cache key costs about 0.7 s per million rows.
@step("validate-snapshot")
def validate_snapshot(
    frame: pd.DataFrame,
    *,
    source: str,
    suite_path: Path = DEFAULT_SUITE_PATH,
    for_scoring: bool = False,
) -> ValidationReport:
    """Check the snapshot and raise `SnapshotRejected` (with `.report`) if any check failed.

    `tasks.gate.chunks.validate_frame` gives the same report in chunks, in less time.
    """
    report = check_snapshot(frame, source=source, suite_path=suite_path, for_scoring=for_scoring)
    return raise_if_rejected(report)


def raise_if_rejected(report: ValidationReport) -> ValidationReport:
    """The report if it passed; `SnapshotRejected` (with `.report`) naming what failed if not."""
    if not report.success:
        raise SnapshotRejected(
            f"Snapshot {report.source} rejected: {report.summary()}", report=report
        )
    logger.info("Snapshot %s %s", report.source, report.summary())
    return report


def run_expectations(
    frame: pd.DataFrame, expectations: Sequence[Any]
) -> list[ExpectationValidationResult]:
    """GX's results for the frame and the given suite entries, in a throwaway in-memory context."""
    import great_expectations as gx

    with (
        _GX_LOCK,
        _quiet_gx_logs(),
        pd.option_context("mode.copy_on_write", True),
        _collected_after(),
    ):
        # Copy-on-write: GX takes `df[mask]` once per expectation, which copies all 21 columns
        # without it (1M rows: 29 s -> 11 s for the full suite). Results are identical.
        context = _ephemeral_context()
        name = f"snapshot-{uuid.uuid4().hex}"
        try:
            batch = (
                context.data_sources.add_pandas(name)
                .add_dataframe_asset("snapshot")
                .add_batch_definition_whole_dataframe("whole")
                .get_batch(batch_parameters={"dataframe": frame})
            )
            # Fresh copies: an Expectation object may belong to one suite only.
            suite = gx.ExpectationSuite(
                name=f"run-{uuid.uuid4().hex}",
                expectations=[e.configuration for e in expectations],
            )
            outcome = batch.validate(suite, result_format=_RESULT_FORMAT)
        finally:
            # GX keeps the last context as the process's current one, and its datasource holds
            # the frame: without this a 1M-row snapshot stays in memory until the next run.
            if name in context.data_sources.all():
                context.data_sources.delete(name)
        results = list(outcome.results)
        del batch, outcome
    return results


@contextmanager
def _collected_after() -> Iterator[None]:
    """GX's batch and validator hold the frame in reference cycles, which wait for a full
    garbage collection: without one, streaming a 10M-row base grew ~50 MB a batch. The heap
    from before is set aside meanwhile (freeze and unfreeze move lists, O(1)), so the
    collection scans only what the run made: a few ms, not ~0.3 s with PyCaret imported."""
    gc.freeze()
    try:
        yield
    finally:
        gc.collect()
        gc.unfreeze()


def _ephemeral_context() -> AbstractDataContext:
    """An in-memory context: no gx/ folder, no docs site, no progress bars, analytics off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # GX 1.24.1 ships no analytics sender (GX_ANALYTICS_ENABLED is read nowhere); the flag is
    # set anyway so an upgrade that brings one back starts disabled.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@contextmanager
def _quiet_gx_logs() -> Iterator[None]:
    """Mute GX's logger: its error lines quote exception text, which can contain cell values."""
    gx_logger = logging.getLogger("great_expectations")
    previous = gx_logger.level
    gx_logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        gx_logger.setLevel(previous)


def _scoring_entries(entries: list[Any]) -> list[Any]:
    """Suite entries for rows to score: no target checks, no row floor, target column optional."""
    kept = []
    for entry in entries:
        kwargs = entry.get("kwargs") or {}
        kind = entry.get("type")
        if kind == "expect_table_row_count_to_be_between" or schema.TARGET in referenced_columns(
            kwargs
        ):
            continue
        if kind == "expect_table_columns_to_match_set":
            columns = [c for c in kwargs.get("column_set", []) if c != schema.TARGET]
            entry = {**entry, "kwargs": {**kwargs, "column_set": columns, "exact_match": False}}
        kept.append(entry)
    return kept
