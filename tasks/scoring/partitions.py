"""Scoring a Parquet base on a cluster: one `score_partition` task per row group, each scoring
into its own part file from shared storage; the flow's process checks and joins the parts."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.decision.campaign import Campaign
from tasks.errors import SnapshotRejected
from tasks.runtime.deadline import Deadline
from tasks.scoring.batch import (
    ParquetBase,
    ScoreSummary,
    check_unique_ids,
    score_validated,
    summarize,
    validated_batches,
)
from tasks.scoring.contacts import flag_contacts
from tasks.scoring.unique import SeenIds
from tasks.settings import Settings, redact_uri
from tasks.steps import retried_step


@dataclass(frozen=True)
class PartScores:
    """One partition's scores, written to `part` (Parquet), and its customers' IDs."""

    part: str
    rows: int
    churners: int
    ids: SeenIds  # checked for repeats across partitions


@retried_step("score-partition", retries=1)
def score_partition(
    model: Any,
    base: ParquetBase,
    groups: Sequence[int],
    *,
    part: Path,
    version: str,
    campaign: Campaign,
) -> PartScores:
    """`score_parquet` of some row groups into the Parquet file `part`, as a task a cluster's
    worker runs from shared storage; each batch validated, IDs returned for the month's check."""
    from tasks.logs import keep_expected_failures_short

    keep_expected_failures_short()  # in the worker's process too: a rejection, no traceback
    deadline = Deadline.after(Settings().download_timeout_seconds)
    shown, typed = base.batches(deadline, groups)
    ids = SeenIds()
    try:
        frames = validated_batches(typed, shown=shown, ids=ids, suite_path=base.suite_path)
        rows, churners = score_validated(
            model, frames, chunk_rows=base.chunk_rows, output=part, version=version,
            campaign=campaign, allow_empty=True,
        )  # fmt: skip
    finally:
        typed.close()
    return PartScores(str(part), rows, churners, ids)


def score_parquet_partitioned(
    model: Any,
    base: ParquetBase,
    *,
    output: Path,
    version: str,
    campaign: Campaign,
) -> ScoreSummary:
    """`score_parquet` with one `score_partition` task per row group, submitted to the flow's
    task runner (a Dask cluster): the same scores in the same order, then one output.

    Every task is waited for before anything is decided, so a rejected partition leaves no
    task writing; the parts (`<output>.parts/`) are removed whatever happens, and `output` is
    replaced only once every part passed and the IDs are unique across the base.
    """
    from tasks.gate.month import count_row_groups

    started = time.perf_counter()
    shown, period = redact_uri(base.location), base.period
    # Streamed as `score_parquet` is, so without the snapshot size limit.
    groups = count_row_groups(
        base.location, period=period, options=base.options, max_bytes=sys.maxsize
    )
    parts = output.with_name(output.name + ".parts")
    shutil.rmtree(parts, ignore_errors=True)  # a killed run's leftovers
    parts.mkdir(parents=True)
    try:
        futures = [
            score_partition.submit(
                model,
                base,
                [g],
                part=parts / f"part-{g:05d}.parquet",
                version=version,
                campaign=campaign,
            )
            for g in range(groups)
        ]
        outcomes = [f.result(raise_on_failure=False) for f in futures]  # waits for all
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        done: list[PartScores] = outcomes
        rows = sum(p.rows for p in done)
        if rows == 0:
            raise SnapshotRejected(f"Snapshot {shown}: the Parquet data has no rows for {period}")
        check_unique_ids(SeenIds.merged(p.ids for p in done), shown=shown)
        churners = sum(p.churners for p in done)
        # Joined in order, the campaign's list flagged across every partition.
        contacted = flag_contacts([Path(p.part) for p in done if p.rows], output, campaign=campaign)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return summarize(model, output, version, rows, churners, started, contacted, campaign)
