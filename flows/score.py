"""Batch scoring: the champion scores a whole customer base, validated first, in chunks."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.parameters import ScoreParameters
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest, current_period
from tasks.decision.campaign import Campaign
from tasks.errors import NoChampion, TrackingUnavailable, unreachable_reason
from tasks.gate.stream import parquet_location
from tasks.gate.suite import validate_snapshot
from tasks.logs import keep_expected_failures_short
from tasks.registry.aliases import find_champion
from tasks.registry.champion import (
    find_champion_campaign,
    find_missing_champion,
    load_champion,
)
from tasks.scoring.batch import ParquetBase, ScoreSummary, score_parquet, write_scores
from tasks.scoring.locations import base_location, output_location, output_path
from tasks.scoring.partitions import score_parquet_partitioned
from tasks.settings import Settings
from tasks.steps import on_cluster
from tasks.tracking.runs import Tracking, configure_tracking


@flow(name="score", log_prints=True)
def score(params: ScoreParameters) -> ScoreSummary:
    """Score customers with `models:/NAME@champion`; nothing is written if the input is bad.

    A Parquet file or folder is streamed: validated and scored batch by batch, never whole in
    memory. Any other input is loaded and validated whole before the champion is looked up.
    """
    keep_expected_failures_short()  # a named failure is logged as its message, no traceback
    # Empty `data` / `output`: the server's Variables (a triggered run has no parameters).
    data, source = base_location(params.data, params.source)
    output = output_location(params.output)  # its format checked before anything is loaded
    settings = Settings()
    period = params.period or current_period()
    target = params.model.resolve(settings)
    tracking = configure_tracking(settings, target)
    # A model of some customers (`model.rows`) scores its month loaded whole, then selected.
    parquet = None if target.rows else parquet_location(data, period, source)
    if parquet is not None:
        model, version, campaign = _champion_model(tracking, params.campaign)
        # On a cluster, a row group per task on its workers; else batch by batch, here.
        streamed = score_parquet_partitioned if on_cluster() else score_parquet
        base = ParquetBase(
            parquet, period, source, params.batch_rows, params.chunk_rows, target.suite_path
        )
        path = output_path(output, settings.home, period, version)
        summary = streamed(model, base, output=path, version=version, campaign=campaign)
    else:
        snapshot = load_snapshot(
            SnapshotRequest(data, period, options=source, in_customer_order=False)
        )
        validate_snapshot(
            snapshot.frame, source=snapshot.source, suite_path=target.suite_path, for_scoring=True
        )
        customers = target.select(snapshot.frame, source=snapshot.source)
        model, version, campaign = _champion_model(tracking, params.campaign)
        summary = write_scores(
            model,
            customers,
            output=output_path(output, settings.home, period, version),
            version=version,
            campaign=campaign,
            chunk_rows=params.chunk_rows,
        )
    print(summary.describe())
    return summary


def _champion_model(tracking: Tracking, campaign: Campaign | None) -> tuple[Any, str, Campaign]:
    """The champion's ChurnModel, version and campaign (`campaign` if given, else the one it
    was promoted under, else the default); `NoChampion` when the registry answered and has
    none, `TrackingUnavailable` when it has one that cannot be used."""
    try:
        champion = find_champion(tracking.model_name)
    except Exception as exc:  # no answer is an outage (exit 5), not "no champion" (exit 10)
        if (reason := unreachable_reason(exc)) is None:
            raise
        raise TrackingUnavailable(
            f"the registry of {tracking.tracking_uri} did not answer when asked for the "
            f"champion of {tracking.model_name!r}: {reason}"
        ) from None
    if champion is None:
        # Why, if the promotion history says there was one (its alias removed, its version
        # deleted); else none was ever promoted.
        gone = find_missing_champion(tracking.model_name)
        why = f"any more ({gone})" if gone else f"yet on {tracking.tracking_uri}"
        back = "" if gone is None else ", or roll back to an earlier one (churn-retrain rollback)"
        raise NoChampion(
            f"no champion for model {tracking.model_name!r} {why}: run a retrain first "
            f"(churn-retrain run) so one is promoted{back}"
        )
    loaded = load_champion(champion)
    if loaded.model is None:
        raise TrackingUnavailable(
            f"champion version {champion.version} of {tracking.model_name!r} cannot be used: "
            f"{loaded.problem}"
        )
    if campaign is None:
        campaign = find_champion_campaign(champion)
        if campaign is None:
            campaign = Campaign()
            get_run_logger().warning(
                "champion v%s records no campaign (promoted before campaigns were recorded): "
                "the list is flagged with the default one (%s)",
                champion.version,
                campaign.describe(),
            )
    # The ChurnModel inside the pyfunc: skips MLflow's schema enforcement on every chunk.
    return loaded.model.unwrap_python_model(), champion.version, campaign
