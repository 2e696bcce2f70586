"""Batch scoring with the champion: chunked, so memory stays bounded whatever the base size.

A frame already in memory is scored chunk by chunk (`write_scores`). A Parquet file or folder is
never loaded whole (`score_parquet`): it is read batch by batch, each batch typed as a whole
read types it, validated with the suite, scored and appended, so a base of any size needs the
memory of one batch.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.data.request import (
    SourceOptions,
)
from tasks.data.schema import ID_COLUMN, NEGATIVE_LABEL, POSITIVE_LABEL
from tasks.data.source import locate_month, source_for
from tasks.decision.campaign import Campaign, customer_values, expected_value
from tasks.errors import SnapshotRejected
from tasks.gate.chunks import validate_frame
from tasks.gate.failures import FailedCheck
from tasks.gate.suite import ValidationReport
from tasks.messages import plural
from tasks.runtime.deadline import Deadline
from tasks.scoring.contacts import EXPECTED_VALUE_COLUMN, flag_contacts, staged_path
from tasks.scoring.output import TableWriter
from tasks.scoring.sizes import DEFAULT_BATCH_ROWS, DEFAULT_CHUNK_ROWS
from tasks.scoring.unique import SeenIds
from tasks.settings import Settings
from tasks.steps import retried_step
from tasks.target import DEFAULT_SUITE_PATH
from tasks.training.model import LABEL_COLUMN, PROBABILITY_COLUMN


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run wrote."""

    output: str
    rows: int
    predicted_churners: int
    model_version: str
    threshold: float
    seconds: float
    contacted: int = 0
    campaign: str = ""  # the campaign whose list `contact` flags, described

    def describe(self) -> str:
        share = self.predicted_churners / self.rows if self.rows else 0.0
        listed = self.contacted / self.rows if self.rows else 0.0
        return (
            f"scored {self.rows:,} customers with version {self.model_version} in "
            f"{self.seconds:.1f} s: {self.predicted_churners:,} ({share:.1%}) above the "
            f"{self.threshold:.2f} threshold; {self.contacted:,} ({listed:.1%}) flagged to "
            f"contact ({self.campaign}) -> {self.output}"
        )


def score_chunk(
    model: Any, rows: pd.DataFrame, *, version: str, scored_at: str, campaign: Campaign
) -> pd.DataFrame:
    """Predictions for one chunk of raw rows: id, probability, label, the expected value of
    contacting the customer (P(churn) x save rate x value - cost), version, time."""
    proba = model.predict_proba(rows)
    values, _ = customer_values(campaign.customer_value, rows)
    return pd.DataFrame(
        {
            ID_COLUMN: rows[ID_COLUMN].to_numpy(),
            PROBABILITY_COLUMN: proba,
            LABEL_COLUMN: np.where(proba >= model.threshold, POSITIVE_LABEL, NEGATIVE_LABEL),
            EXPECTED_VALUE_COLUMN: expected_value(
                proba, values, save_rate=campaign.save_rate, contact_cost=campaign.contact_cost
            ),
            "model_version": version,
            "scored_at": scored_at,
        }
    )


@retried_step("write-scores", retries=1)
def write_scores(
    model: Any,
    frame: pd.DataFrame,
    *,
    output: Path,
    version: str,
    campaign: Campaign,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ScoreSummary:
    """Score `frame` chunk by chunk with the champion's ChurnModel and stream to `output`,
    the campaign's list flagged (`contact`).

    Only one chunk of predictions is in memory at a time; the file is written to a temporary
    name and renamed, so a failed run never leaves half a file where the previous one was.
    """
    if frame.empty:
        raise ValueError("nothing to score: the input has no rows")
    started = time.perf_counter()
    staged = staged_path(output)
    try:
        rows, churners = write_scored(
            model, chunked([frame], chunk_rows), output=staged, version=version,
            campaign=campaign,
        )  # fmt: skip
        contacted = flag_contacts([staged], output, campaign=campaign)
    finally:
        staged.unlink(missing_ok=True)
    return summarize(model, output, version, rows, churners, started, contacted, campaign)


@dataclass(frozen=True)
class ParquetBase:
    """Which Parquet file or folder is scored, and how it is read: all but model and output."""

    location: str
    period: str
    options: SourceOptions | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    suite_path: Path = DEFAULT_SUITE_PATH

    def batches(self, deadline: Deadline, groups: Sequence[int] | None = None) -> tuple[str, Any]:
        """The location as shown, and its typed batches (`groups`: only those row groups)."""
        month = locate_month(self.location, self.period, self.options or SourceOptions())
        typed = source_for(month).batches(
            month, batch_rows=self.batch_rows, deadline=deadline, groups=groups
        )
        return month.shown, typed


@retried_step("score-parquet", retries=1)
def score_parquet(
    model: Any,
    base: ParquetBase,
    *,
    output: Path,
    version: str,
    campaign: Campaign,
    validate: bool = True,
    deadline_seconds: float | None = None,
) -> ScoreSummary:
    """Score a Parquet file or folder batch by batch, in its row order, into `output`.

    Each batch of `batch_rows` is typed as `load_snapshot` types a whole file, validated with
    the suite for scoring (`validate=False` only to measure what validation costs), scored in
    chunks of `chunk_rows` and appended to `output`'s temporary file, which replaces `output`
    only once every batch passed: a rejected batch leaves no output and the previous one
    untouched. Each read waits at most `deadline_seconds` (the download deadline by default).
    """
    started = time.perf_counter()
    deadline = Deadline.after(deadline_seconds or Settings().download_timeout_seconds)
    shown, typed = base.batches(deadline)
    frames = (
        validated_batches(typed, shown=shown, suite_path=base.suite_path)
        if validate
        else (frame for frame, _ in typed)
    )
    staged = staged_path(output)
    try:
        rows, churners = score_validated(
            model, frames, chunk_rows=base.chunk_rows, output=staged, version=version,
            campaign=campaign,
        )  # fmt: skip
        contacted = flag_contacts([staged], output, campaign=campaign)
    finally:
        typed.close()  # a rejected batch: the read-ahead thread stops now, not when collected
        staged.unlink(missing_ok=True)
    return summarize(model, output, version, rows, churners, started, contacted, campaign)


def chunked(frames: Iterable[pd.DataFrame], chunk_rows: int) -> Iterator[pd.DataFrame]:
    for frame in frames:
        yield from (frame.iloc[i : i + chunk_rows] for i in range(0, len(frame), chunk_rows))


def write_scored(
    model: Any,
    chunks: Iterable[pd.DataFrame],
    *,
    output: Path,
    version: str,
    campaign: Campaign,
    allow_empty: bool = False,
) -> tuple[int, int]:
    """Score each chunk and append it to `output` via `<output>.partial`: (rows, churners).

    The temporary file replaces `output` only after the last chunk, and is removed whatever
    fails on the way (a chunk, or the iterator producing them). No chunks is an error unless
    `allow_empty` (a partition without rows for the period: nothing is written).
    """
    import pyarrow as pa

    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    rows = churners = 0
    with TableWriter(output) as out:
        for chunk in chunks:
            scores = score_chunk(
                model, chunk, version=version, scored_at=scored_at, campaign=campaign
            )
            rows += len(scores)
            churners += int((scores[LABEL_COLUMN] == POSITIVE_LABEL).sum())
            out.write(pa.Table.from_pandas(scores, preserve_index=False))
        if not out.written:
            if allow_empty:
                return 0, 0
            raise ValueError("nothing to score: the input has no rows")
        out.commit()
    return rows, churners


def summarize(
    model: Any,
    output: Path,
    version: str,
    rows: int,
    churners: int,
    started: float,
    contacted: int,
    campaign: Campaign,
) -> ScoreSummary:
    seconds = round(time.perf_counter() - started, 3)
    return ScoreSummary(
        str(output), rows, churners, version, float(model.threshold), seconds, contacted,
        campaign.describe(),
    )  # fmt: skip


def validated_batches(
    batches: Iterator[tuple[pd.DataFrame, str]],
    *,
    shown: str,
    ids: SeenIds | None = None,
    suite_path: Path = DEFAULT_SUITE_PATH,
) -> Generator[pd.DataFrame, None, None]:
    """Each batch, checked by the suite in a thread while the caller scores it.

    The caller commits its output only once this is exhausted, after the last batch passed
    (`score_validated`); a rejection is raised at the caller's next batch, named by its rows.
    The suite sees one batch at a time, so customer IDs are also checked across batches: a
    duplicate in two batches is refused as one in a batch.
    """
    kept = SeenIds() if ids is None else ids  # given: the caller checks them, with others'
    pending = iter(batches)
    # The suite and the model overlap on two cores: each lets go of the GIL often enough
    # (README, "Large months"). One batch in the suite at a time, the next read once it passed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-retrain-suite") as suite:
        checking: Future[Any] | None = None
        try:
            while True:
                if checking is not None:
                    checking.result()  # the batch before: its rejection is raised here
                    checking = None
                if (item := next(pending, None)) is None:
                    break
                frame, where = item
                checking = suite.submit(
                    contextvars.copy_context().run,  # the run's context, for its logs
                    validate_frame.fn, frame, source=where, for_scoring=True, suite_path=suite_path,
                )  # fmt: skip
                # 8 bytes per customer: the only memory that grows with the base.
                kept.add(frame[ID_COLUMN])
                yield frame
                del frame, item
        except GeneratorExit:
            # The caller stopped on its own error: this batch's rejection is what explains it.
            if checking is not None and isinstance(
                rejected := checking.exception(), SnapshotRejected
            ):
                raise rejected from None
            raise
    if ids is None:
        check_unique_ids(kept, shown=shown)


def score_validated(
    model: Any,
    frames: Generator[pd.DataFrame, None, None],
    *,
    chunk_rows: int,
    output: Path,
    version: str,
    campaign: Campaign,
    allow_empty: bool = False,
) -> tuple[int, int]:
    """`write_scored` of `validated_batches` (or any frames), in chunks of `chunk_rows`.

    A batch is scored while the suite checks it: when the model fails on a batch the suite
    rejects, the rejection is raised, not the model's error.
    """
    try:
        return write_scored(
            model, chunked(frames, chunk_rows), output=output, version=version,
            campaign=campaign, allow_empty=allow_empty,
        )  # fmt: skip
    except Exception:
        frames.close()  # raises the batch's SnapshotRejected, if the suite rejected it
        raise


def check_unique_ids(ids: SeenIds, *, shown: str) -> None:
    """`SnapshotRejected` if a customer ID occurs in more than one row of the base (on 64-bit
    hashes, as the gate checks unique columns across chunks)."""
    shared = ids.repeated()
    if not shared:
        return
    problem = f"{plural(shared, 'row')} share their value with another row (in different batches)"
    failed = FailedCheck(ID_COLUMN, "expect_column_values_to_be_unique", problem, shared)
    report = ValidationReport(source=shown, rows=ids.rows, evaluated=1, failures=(failed,))
    raise SnapshotRejected(f"Snapshot {shown} rejected: {report.summary()}", report=report)
