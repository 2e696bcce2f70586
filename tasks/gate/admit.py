"""The gate in one call: load the month, then the parse guards, the suite and drift, reported.

Whatever fails raises `SnapshotRejected` before anything is trained or logged; the gate's
report is published either way (`reporting_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.data.request import DEFAULT_MAX_BYTES, resolve_source
from tasks.data.schema import ID_COLUMN
from tasks.data.snapshot import Snapshot, digest_frame
from tasks.data.sources import read_source_bytes
from tasks.gate.drift import DriftReport, check_drift, find_reference_profile
from tasks.gate.parse import parse_snapshot
from tasks.gate.report import Gate, reporting_gate
from tasks.gate.suite import DEFAULT_SUITE_PATH, ValidationReport, validate_snapshot
from tasks.gate.thresholds import DriftThresholds
from tasks.settings import Settings, redact_uri
from tasks.steps import StageClock, retried_step


@dataclass(frozen=True)
class SnapshotRequest:
    """Which month, from where: a path or URL (`{period}` filled in), or generated rows."""

    source: str | None
    period: str
    seed: int = 0
    generated_rows: int = 7043
    drift: float = 0.0
    scenario: str = "none"


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
            validation = gate.record(
                validate_snapshot(snapshot.frame, source=snapshot.source, suite_path=suite_path)
            )
            reference = find_reference_profile(settings)
            drift = gate.record(
                check_drift(snapshot.frame, reference, drift_gate, source=snapshot.source)
            )
    return Admitted(snapshot=snapshot, validation=validation, drift=drift, gate=gate)


@retried_step("load-snapshot", delay_seconds=5)
def load_snapshot(
    request: SnapshotRequest,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_seconds: float | None = None,
) -> Snapshot:
    """Read the month's data from a path or URL, or generate it when no source is given.

    A URL download ends within `deadline_seconds` (default: the `download_timeout_seconds`
    setting); a 5xx answer or a timeout (`SnapshotUnavailable`) is retried, a 4xx is not.
    """
    source, period, seed = request.source, request.period, request.seed
    if source is None:
        from tasks.data.generate import generate_snapshot

        frame = generate_snapshot(
            period,
            seed=seed,
            rows=request.generated_rows,
            drift=request.drift,
            scenario=request.scenario,
        )
        label = f"generated:{period}?seed={seed}&rows={request.generated_rows}"
        if request.drift:
            label += f"&scenario={request.scenario}&drift={request.drift}"
    else:
        label = resolve_source(source, period)
        if deadline_seconds is None:
            deadline_seconds = Settings().download_timeout_seconds
        payload = read_source_bytes(label, max_bytes=max_bytes, deadline=deadline_seconds)
        frame = parse_snapshot(payload, source=label)
    if ID_COLUMN in frame and frame[ID_COLUMN].dtype != object:
        frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    return Snapshot(
        frame=frame, source=redact_uri(label), digest=digest_frame(frame), period=period
    )
