"""Validate a snapshot without training: the retrain's data gate on its own, for checking a delivery.

Same parse guards, expectation suite and drift check as `retrain`, same report under
`<home>/reports/<flow run id>/`; nothing is trained, logged to MLflow or registered, and no
alert is sent (the person who asked is looking at the answer). Never imports PyCaret. The
champion's profile is read through the same tracking connection as every command
(`tasks.tracking.connection.connect_tracking`: URIs and credentials from the settings).

A Parquet file or folder (local or fsspec) is validated as it is read, chunk by chunk
(`tasks.gate.month`): the same messages and report, in the memory of one chunk plus ~65 bytes
a row (IDs and row hashes for the digest, the drift check's columns), never the whole month.
"""

from __future__ import annotations

import pandas as pd
from prefect import flow
from pydantic import BaseModel

from flows.parameters import ValidateParameters
from tasks.data.request import SnapshotRequest, current_period
from tasks.gate.admit import admit_snapshot
from tasks.gate.chunk_suite import unchunkable_expectations
from tasks.gate.drift import check_drift, find_reference_profile
from tasks.gate.month import MonthRead, validate_month
from tasks.gate.report import reporting_gate
from tasks.gate.stream import parquet_location
from tasks.logs import keep_expected_failures_short
from tasks.settings import Settings, redact_uri
from tasks.steps import on_cluster
from tasks.target import ModelTarget


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
    target = params.model.resolve(settings)
    location = parquet_location(params.data, period, params.source)
    # Streamed unless the suite must see the month whole, or the model keeps some customers.
    streams = location is not None and target.rows is None
    if streams and location and not unchunkable_expectations(target.suite_path):
        return _streamed(params, settings, location, period, target)
    admitted = admit_snapshot(
        SnapshotRequest(params.data, period, options=params.source),
        settings,
        params.drift_gate,
        target=target,
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


def _streamed(
    params: ValidateParameters,
    settings: Settings,
    location: str,
    period: str,
    target: ModelTarget,
) -> GateVerdict:
    """The gate on a Parquet month read once, chunk by chunk: suite, then drift."""
    with reporting_gate(settings, period) as gate:
        gate.source = redact_uri(location)
        # A local store answers without the network: with no champion's profile the drift
        # check is skipped, so its columns are not kept. A remote store is asked after the
        # suite, as for a CSV: a bad delivery is rejected even while the server is down.
        reference = find_reference_profile(settings, target.model) if settings.is_local else None
        wanted = MonthRead(
            location,
            period,
            params.source,
            target.suite_path,
            params.chunk_rows,
            max_bytes=settings.max_snapshot_bytes,
            with_features=params.drift_gate.enabled
            and (reference is None or reference.profile is not None),
        )
        # On a cluster, a row group per task on its workers.
        month = validate_month(wanted, partitioned=on_cluster())
        validation = gate.record(month.validation)
        if reference is None:
            reference = find_reference_profile(settings, target.model)
        features = month.features if month.features is not None else pd.DataFrame()
        drift = gate.record(
            check_drift(features, reference, params.drift_gate, source=month.source)
        )
    return GateVerdict(
        period=period,
        source=month.source,
        rows=month.rows,
        digest=month.digest,
        validation=validation.summary(),
        drift=drift.summary(),
        report=str(gate.html_path),
    )
