"""Validate a snapshot without training: the retrain's data gate on its own, for checking a delivery.

Same parse guards, expectation suite and drift check as `retrain`, same report under
`<home>/reports/<flow run id>/`; nothing is trained, logged to MLflow or registered, and no
alert is sent (the person who asked is looking at the answer). Never imports PyCaret. The
champion's profile is read through the same tracking connection as every command
(`tasks.tracking.connection.connect_tracking`: URIs and credentials from the settings).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from flows.parameters import ValidateParameters
from tasks.data.request import current_period
from tasks.gate.admit import admit_snapshot
from tasks.gate.load import SnapshotRequest
from tasks.gate.suite import DEFAULT_SUITE_PATH
from tasks.logs import keep_expected_failures_short
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
    keep_expected_failures_short()  # a named failure is logged as its message, no traceback
    settings = Settings()
    period = params.period or current_period()
    suite = Path(params.suite) if params.suite else DEFAULT_SUITE_PATH
    admitted = admit_snapshot(
        SnapshotRequest(params.data, period, options=params.source),
        settings,
        params.drift_gate,
        suite_path=suite,
    )
    snapshot, gate = admitted.snapshot, admitted.gate
    return GateVerdict(
        period=period,
        source=snapshot.source,
        rows=snapshot.rows,
        digest=snapshot.digest,
        validation=admitted.validation.summary(),
        drift=admitted.drift.summary(),
        report=str(gate.html_path),
    )
