"""The registry's state for `status`: champion, previous champion, history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict

from tasks.registry.aliases import (
    CHALLENGER,
    PREVIOUS_CHAMPION,
    alias_version,
    champion_version,
    is_missing,
)
from tasks.registry.champion import find_missing_champion
from tasks.registry.history import HistoryEvent, read_history
from tasks.registry.reign import Reign, read_reign


class VersionSummary(BaseModel):
    """A registered version and the decision run that produced it."""

    model_config = ConfigDict(frozen=True)

    version: str
    run_id: str | None
    registered_at: str
    period: str | None = None
    verdict: str | None = None
    promoted: str | None = None
    scores: dict[str, float] = {}
    difference: str | None = None
    reason: str | None = None


class RegistryStatus(BaseModel):
    """Who is champion, what it scored, and every alias move so far."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    versions: int
    champion: VersionSummary | None
    previous_champion: VersionSummary | None
    challenger: VersionSummary | None
    missing_champion: str | None
    history: list[HistoryEvent]
    #: The champion's scores in the latest retrain that compared against it (same holdout as
    #: that month's challenger): period, run id and metrics.
    latest_comparison: dict[str, Any] | None = None
    #: The champion's score at promotion and in every later month (None: no champion).
    reign: Reign | None = None
    #: Where `status` wrote the reign's plot (None: not written).
    reign_plot: str | None = None


def _summary(client: MlflowClient, name: str, version: str | None) -> VersionSummary | None:
    if version is None:
        return None
    mv = client.get_model_version(name, version)
    scores: dict[str, float] = {}
    tags: dict[str, str] = {}
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
            scores = {
                k.removeprefix("holdout_"): v
                for k, v in run.data.metrics.items()
                if k.startswith("holdout_")
            }
            tags = run.data.tags
        except MlflowException as exc:
            if not is_missing(exc):
                raise
    return VersionSummary(
        version=str(mv.version),
        run_id=mv.run_id,
        registered_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
            timespec="seconds"
        ),
        period=mv.tags.get("period"),
        verdict=mv.tags.get("verdict"),
        promoted=mv.tags.get("promoted"),
        scores=scores,
        difference=tags.get("decision.difference"),
        reason=tags.get("decision.reason"),
    )


def registry_status(name: str) -> RegistryStatus | None:
    """The model's champion, previous champion, latest challenger and history (None: no model)."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise
    champion = champion_version(client, name)
    latest = None
    if champion is not None:
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.`decision.champion_version_before` = '{champion}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            run = runs[0]
            latest = {
                "period": run.data.tags.get("data.period"),
                "run_id": run.info.run_id,
                "verdict": run.data.tags.get("decision.verdict"),
                "scores": {
                    k.removeprefix("champion_holdout_"): v
                    for k, v in run.data.metrics.items()
                    if k.startswith("champion_holdout_")
                },
            }
    return RegistryStatus(
        model_name=name,
        versions=len(client.search_model_versions(f"name='{name}'")),
        champion=_summary(client, name, champion),
        previous_champion=_summary(client, name, alias_version(client, name, PREVIOUS_CHAMPION)),
        challenger=_summary(client, name, alias_version(client, name, CHALLENGER)),
        missing_champion=None if champion else find_missing_champion.fn(name),
        history=read_history(client, name),
        latest_comparison=latest,
        reign=read_reign(name, champion) if champion is not None else None,
    )
