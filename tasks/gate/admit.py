"""The gate in one call: load the month, then the parse guards, the suite and drift, reported.

Whatever fails raises `SnapshotRejected` before anything is trained or logged; the gate's
report is published either way (`reporting_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest
from tasks.data.snapshot import Snapshot, digest_frame
from tasks.gate.chunks import validate_frame
from tasks.gate.drift import DriftReport, check_drift, find_reference_profile
from tasks.gate.report import Gate, reporting_gate
from tasks.gate.suite import ValidationReport
from tasks.gate.thresholds import DriftThresholds
from tasks.settings import Settings
from tasks.steps import StageClock
from tasks.target import ModelTarget

#: Rows per suite call for a month already in memory (a streamed one uses `DEFAULT_CHUNK_ROWS`).
IN_MEMORY_CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class Admitted:
    """A snapshot that passed the gate, with the gate's reports."""

    snapshot: Snapshot
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
    raises `SnapshotRejected` if it fails, with the gate's report written either way."""
    clock = clock or StageClock()
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
