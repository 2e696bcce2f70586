"""The gate in one call: load the month, then the parse guards, the suite and drift, reported.

Whatever fails raises `SnapshotRejected` before anything is trained or logged; the gate's
report is published either way (`reporting_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest
from tasks.data.snapshot import Snapshot
from tasks.gate.chunks import validate_frame
from tasks.gate.drift import DriftReport, check_drift, find_reference_profile
from tasks.gate.report import Gate, reporting_gate
from tasks.gate.suite import DEFAULT_SUITE_PATH, ValidationReport
from tasks.gate.thresholds import DriftThresholds
from tasks.settings import Settings
from tasks.steps import StageClock

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
    suite_path: Path = DEFAULT_SUITE_PATH,
    clock: StageClock | None = None,
) -> Admitted:
    """Load the month and pass it through the gate; raises `SnapshotRejected` if it fails."""
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
                    suite_path=suite_path,
                    chunk_rows=IN_MEMORY_CHUNK_ROWS,
                )
            )
            reference = find_reference_profile(settings)
            drift = gate.record(
                check_drift(snapshot.frame, reference, drift_gate, source=snapshot.source)
            )
    return Admitted(snapshot=snapshot, validation=validation, drift=drift, gate=gate)
