"""MLflow runs of a retrain: the experiment, opening and finishing a run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from tasks.errors import TrackingUnavailable, unreachable_reason
from tasks.settings import Settings, redact_uri
from tasks.steps import retried_step, step
from tasks.tracking.check import check_tracking as check_tracking
from tasks.tracking.connection import connect_tracking


def tracking_lost(exc: BaseException, *, run_id: str) -> TrackingUnavailable | None:
    """A clear error for a server that went away mid-run, or None for any other failure."""
    import mlflow

    reason = unreachable_reason(exc)
    if reason is None:
        return None
    return TrackingUnavailable(
        f"MLflow server {redact_uri(mlflow.get_tracking_uri())} went away during the run: "
        f"{reason}. The run stopped at that step; nothing after it happened (MLflow run "
        f"{run_id} may still show RUNNING). Rerun when the server is back."
    )


@dataclass(frozen=True)
class Tracking:
    """Where this run's records go (URIs redacted: they may carry credentials)."""

    experiment_id: str
    tracking_uri: str
    model_name: str
    ui_url: str

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def version_url(self, version: str) -> str:
        return f"{self.ui_url}/#/models/{self.model_name}/versions/{version}"


@retried_step("configure-tracking")  # get-or-create: a retry finds what a lost answer made
def configure_tracking(settings: Settings) -> Tracking:
    """Connect (`connect_tracking`) and make sure the experiment exists."""
    if settings.is_local:
        settings.home.mkdir(parents=True, exist_ok=True)
    connect_tracking(settings)  # URIs, credentials, bounded HTTP retries (idempotent)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is None:
        # A local store keeps artifacts under `home`, not in ./mlruns of whatever cwd ran first.
        location = settings.artifact_root.as_uri() if settings.is_local else None
        experiment_id = client.create_experiment(
            settings.experiment_name, artifact_location=location
        )
    else:
        experiment_id = experiment.experiment_id
    return Tracking(
        experiment_id=experiment_id,
        tracking_uri=redact_uri(settings.resolved_tracking_uri),
        model_name=settings.model_name,
        ui_url=settings.ui_url,
    )


@step("open-run")  # never retried: a retry after a lost answer would make a second run
def open_run(
    tracking: Tracking, *, run_name: str, params: dict[str, Any], tags: dict[str, str]
) -> str:
    """Start the MLflow run that holds this retrain's records; returns its id."""
    client = MlflowClient()
    run = client.create_run(tracking.experiment_id, run_name=run_name, tags=tags)
    client.log_batch(
        run.info.run_id,
        params=[mlflow.entities.Param(k, param_text(v)) for k, v in sorted(params.items())],
    )
    return str(run.info.run_id)


@contextmanager
def finishing_run(run_id: str) -> Iterator[None]:
    """Mark the MLflow run FINISHED when the block completes and FAILED when it raises.

    A tracking server that went away mid-run becomes `TrackingUnavailable` saying so (rather
    than the HTTP client's traceback); the run cannot be marked FAILED then, which is said too.
    """
    try:
        yield
    except BaseException as exc:
        try:
            MlflowClient().set_terminated(run_id, "FAILED")
        except Exception as marking:
            if lost := tracking_lost(exc, run_id=run_id) or tracking_lost(marking, run_id=run_id):
                raise lost from exc
            raise
        if isinstance(exc, Exception) and (lost := tracking_lost(exc, run_id=run_id)):
            raise lost from exc
        raise
    try:
        MlflowClient().set_terminated(run_id, "FINISHED")
    except Exception as exc:
        if lost := tracking_lost(exc, run_id=run_id):
            raise lost from exc
        raise


def param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's param value limit
