"""Batch scoring: the champion scores a whole customer base, validated first, in chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.parameters import ScoreParameters
from tasks.data.request import current_period
from tasks.errors import TrackingUnavailable
from tasks.gate.load import SnapshotRequest, load_snapshot
from tasks.gate.suite import validate_snapshot
from tasks.logs import keep_expected_failures_short
from tasks.registry.aliases import find_champion
from tasks.registry.champion import load_champion
from tasks.scoring.batch import ScoreSummary, write_scores
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking


@flow(name="score", log_prints=True)
def score(params: ScoreParameters) -> ScoreSummary:
    """Score customers with `models:/NAME@champion`; nothing is written if the input is bad."""
    keep_expected_failures_short()  # a named failure is logged as its message, no traceback
    settings = Settings()
    period = params.period or current_period()
    tracking = configure_tracking(settings)
    snapshot = load_snapshot(
        SnapshotRequest(params.data, period, options=params.source, in_customer_order=False)
    )
    validate_snapshot(snapshot.frame, source=snapshot.source, for_scoring=True)
    champion = find_champion(tracking.model_name)
    if champion is None:
        raise TrackingUnavailable(
            f"no champion registered for {tracking.model_name!r} on {tracking.tracking_uri}: "
            "run a retrain first"
        )
    loaded = load_champion(champion)
    if loaded.model is None:
        raise TrackingUnavailable(
            f"champion version {champion.version} of {tracking.model_name!r} cannot be used: "
            f"{loaded.problem}"
        )
    # The ChurnModel inside the pyfunc: skips MLflow's schema enforcement on every chunk.
    model: Any = loaded.model.unwrap_python_model()
    output = Path(params.output or settings.home / "scores" / f"{period}-v{champion.version}.csv")
    summary = write_scores(
        model, snapshot.frame, output=output, version=champion.version, chunk_rows=params.chunk_rows
    )
    print(summary.describe())
    return summary
