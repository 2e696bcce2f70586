"""Validate a snapshot without training: the retrain's data gate on its own, for checking a delivery.

Same parse guards, expectation suite and drift check as `retrain`, same report under
`<home>/reports/<flow run id>/`; nothing is trained, logged to MLflow or registered, and no
alert is sent (the person who asked is looking at the answer). Never imports PyCaret.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from flows.parameters import ValidateParameters
from tasks.data.request import current_period
from tasks.data.snapshot import load_snapshot
from tasks.gate.drift import check_drift, find_reference_profile
from tasks.gate.report import reporting_gate
from tasks.gate.suite import DEFAULT_SUITE_PATH, validate_snapshot
from tasks.settings import Settings


class GateVerdict(BaseModel):
    """What a passing snapshot looked like."""

    period: str
    source: str
    rows: int
    digest: str
    validation: str
    drift: str
    report: str


@flow(name="validate-snapshot", log_prints=True)
def validate(params: ValidateParameters) -> GateVerdict:
    """Run the data gate on one snapshot; raises `SnapshotRejected` (run Failed) if it fails."""
    settings = Settings()
    period = params.period or current_period()
    suite = Path(params.suite) if params.suite else DEFAULT_SUITE_PATH
    with reporting_gate(settings, period) as gate:
        snapshot = load_snapshot(
            params.data, period=period, seed=0, max_bytes=settings.max_snapshot_bytes
        )
        gate.source = snapshot.source
        validation = gate.record(
            validate_snapshot(snapshot.frame, source=snapshot.source, suite_path=suite)
        )
        drift = gate.record(
            check_drift(
                snapshot.frame,
                find_reference_profile(settings),
                params.drift_gate,
                source=snapshot.source,
            )
        )
    return GateVerdict(
        period=period,
        source=snapshot.source,
        rows=snapshot.rows,
        digest=snapshot.digest,
        validation=validation.summary(),
        drift=drift.summary(),
        report=str(gate.html_path),
    )
