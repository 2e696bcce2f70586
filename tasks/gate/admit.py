"""The gate in one call: load the month, then the parse guards, the suite and drift, reported.

Whatever fails raises `SnapshotRejected` before anything is trained or logged; the gate's
report is published either way (`reporting_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from tasks.data.configured import find_configured_source
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest
from tasks.data.snapshot import Snapshot, digest_frame
from tasks.data.source import streamed
from tasks.gate.chunk_suite import unchunkable_expectations
from tasks.gate.chunks import validate_frame
from tasks.gate.drift import DriftReport, check_drift, find_reference_profile
from tasks.gate.month import MonthRead, StreamedSnapshot, validate_month
from tasks.gate.report import Gate, reporting_gate
from tasks.gate.suite import ValidationReport
from tasks.gate.thresholds import DriftThresholds
from tasks.settings import Settings
from tasks.steps import StageClock, on_cluster
from tasks.target import ModelTarget

#: Rows per suite call for a month already in memory (a streamed one uses `DEFAULT_CHUNK_ROWS`).
IN_MEMORY_CHUNK_ROWS = 1_000_000
#: Rows per suite call for a month the retrain streams: GX's cost per call is paid less often
#: than at the validate command's default, in the memory of one such chunk (~0.5 GB).
STREAMED_CHUNK_ROWS = 500_000


@dataclass(frozen=True)
class Admitted:
    """A snapshot that passed the gate, with the gate's reports."""

    snapshot: Snapshot | StreamedSnapshot
    validation: ValidationReport
    drift: DriftReport
    gate: Gate


def admit_snapshot(
    request: SnapshotRequest,
    settings: Settings,
    drift_gate: DriftThresholds,
    *,
    target: ModelTarget,
    clock: StageClock | None = None,
) -> Admitted:
    """The gate's entry point: load the month, pass it through the suite, keep the target's
    customers (`target.rows`), check their drift against its champion's training data;
    raises `SnapshotRejected` if it fails, with the gate's report written either way.

    A month its source reads a part at a time (Parquet: `streams`) is never loaded whole: one
    pass validates it and keeps its digest, labels, customer order and drift counts
    (`StreamedSnapshot`); the retrain takes its holdout and training rows in a second pass.
    """
    clock = clock or StageClock()
    if request.source is None and (configured := find_configured_source()) is not None:
        request = replace(request, source=configured[0], options=configured[1])
    if settings.stream_months and streams(request, target):
        return _admit_streamed(request, settings, drift_gate, target=target, clock=clock)
    with reporting_gate(settings, request.period) as gate:
        with clock("load"):
            snapshot = load_snapshot(request, max_bytes=settings.max_snapshot_bytes)
        gate.source = snapshot.source
        with clock("validate"):
            # In chunks: the same report as the whole frame's, in less time. The month is in
            # memory already, so the chunks are large: GX's cost per call is paid less often
            # (3M rows: 13.4 s in chunks of 250,000, 10.5 s in chunks of a million).
            validation = gate.record(
                validate_frame(
                    snapshot.frame,
                    source=snapshot.source,
                    suite_path=target.suite_path,
                    chunk_rows=IN_MEMORY_CHUNK_ROWS,
                )
            )
            snapshot = _selected(snapshot, target)
            reference = find_reference_profile(settings, target.model)
            drift = gate.record(
                check_drift(snapshot.frame, reference, drift_gate, source=snapshot.source)
            )
    return Admitted(snapshot=snapshot, validation=validation, drift=drift, gate=gate)


def _selected(snapshot: Snapshot, target: ModelTarget) -> Snapshot:
    """The target's customers of the month: its own digest, the filter in its name."""
    if target.rows is None:
        return snapshot
    frame = target.select(snapshot.frame, source=snapshot.source)
    return Snapshot(
        frame=frame,
        source=f"{snapshot.source} [{target.rows}]",
        digest=digest_frame(frame),
        period=snapshot.period,
    )


def streams(request: SnapshotRequest, target: ModelTarget) -> bool:
    """Whether the month is admitted in a pass over its source instead of loaded whole: its
    source reads it a part at a time (a local or fsspec Parquet file or folder), the rows stay
    in customer order, the model takes every customer and its suite checks chunks."""
    return (
        request.in_customer_order
        and target.rows is None
        and not unchunkable_expectations(target.suite_path)
        and streamed(request) is not None
    )


def _admit_streamed(
    request: SnapshotRequest,
    settings: Settings,
    drift_gate: DriftThresholds,
    *,
    target: ModelTarget,
    clock: StageClock,
) -> Admitted:
    """`admit_snapshot` of a month read once, chunk by chunk (one task per row group on a
    cluster): the same report, digest, drift and rejection as a whole read, in the memory of
    one chunk plus ~35 bytes a customer (ID, row hash, label, position)."""
    found = streamed(request)
    assert found is not None  # `streams` said so
    with reporting_gate(settings, request.period) as gate:
        gate.source = found[1].shown
        # Known before the pass: the month's features are counted against its bins, not kept.
        reference = find_reference_profile(settings, target.model)
        read = MonthRead(
            found[1].text,
            request.period,
            request.options,
            target.suite_path,
            max_bytes=settings.max_snapshot_bytes,
            with_features=False,
            profile=reference.profile if drift_gate.enabled else None,
            with_labels=True,
            chunk_rows=STREAMED_CHUNK_ROWS,
            categories=True,
        )
        with clock("validate"):
            month = validate_month(read, partitioned=on_cluster())
        validation = gate.record(month.validation)
        assert month.keys is not None  # with_labels
        with clock("drift"):
            counts = month.drift if month.drift is not None else pd.DataFrame()
            drift = gate.record(check_drift(counts, reference, drift_gate, source=month.source))
    snapshot = StreamedSnapshot(
        read, month.source, month.digest, request.period, month.rows, month.keys
    )
    return Admitted(snapshot=snapshot, validation=validation, drift=drift, gate=gate)
