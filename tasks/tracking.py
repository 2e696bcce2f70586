"""MLflow tracking: where runs go, and what each retrain run records."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, Schema
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.connection import check_tracking as check_tracking  # the flow's first task
from tasks.connection import connect_tracking, tracking_lost
from tasks.schema import FEATURES, FLOAT_COLUMNS, ID_COLUMN, INTEGER_COLUMNS
from tasks.settings import Settings, redact_uri
from tasks.training import Challenger

#: Pinned so loading the model never re-resolves its environment (inference takes ~8 s).
_MODEL_PACKAGES = (
    "pycaret",
    "scikit-learn",
    "pandas",
    "numpy",
    "cloudpickle",
    "lightgbm",
    "mlflow",
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


@task(name="configure-tracking", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def configure_tracking(settings: Settings) -> Tracking:
    """Point MLflow at the configured store and make sure the experiment exists."""
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


@task(name="open-run", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def open_run(
    tracking: Tracking, *, run_name: str, params: dict[str, Any], tags: dict[str, str]
) -> str:
    """Start the MLflow run that holds this retrain's records; returns its id."""
    client = MlflowClient()
    run = client.create_run(tracking.experiment_id, run_name=run_name, tags=tags)
    client.log_batch(
        run.info.run_id,
        params=[mlflow.entities.Param(k, _param_text(v)) for k, v in sorted(params.items())],
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


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's param value limit


def model_signature() -> ModelSignature:
    """Raw rows in (ID optional), probability and label out."""
    kinds = {c: "long" for c in INTEGER_COLUMNS} | {c: "double" for c in FLOAT_COLUMNS}
    inputs: list[Any] = [ColSpec("string", ID_COLUMN, required=False)]
    inputs += [ColSpec(kinds.get(c, "string"), c, required=c != "TotalCharges") for c in FEATURES]
    outputs: list[Any] = [
        ColSpec("double", "churn_probability"),
        ColSpec("string", "churn_prediction"),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example() -> pd.DataFrame:
    """Synthetic rows, so no real customer's data ends up in a model artifact."""
    from tasks.generate import generate_snapshot

    return generate_snapshot("2020-01", seed=0, rows=3).drop(columns=["Churn"])


def _pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in _MODEL_PACKAGES]


@task(name="log-challenger", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def log_challenger(run_id: str, challenger: Challenger) -> str:
    """Log the challenger's params, CV metrics, leaderboard and pyfunc model; returns its URI."""
    import cloudpickle

    import tasks.model

    # uv.lock would be copied into every model when run from the checkout; pins suffice.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    # Embed the wrapper class in the pickle so loading needs no copy of this project.
    cloudpickle.register_pickle_by_value(tasks.model)
    client = MlflowClient()
    client.log_batch(
        run_id,
        params=[
            mlflow.entities.Param("challenger.algorithm", challenger.algorithm),
            mlflow.entities.Param("challenger.estimator", challenger.estimator),
            *(
                mlflow.entities.Param(f"challenger.param.{k}", _param_text(v))
                for k, v in sorted(challenger.estimator_params.items())
            ),
        ],
        metrics=[
            mlflow.entities.Metric(f"cv_{k}", v, 0, 0) for k, v in challenger.cv_metrics.items()
        ],
        tags=[mlflow.entities.RunTag("training.worker", challenger.worker)],
    )
    with tempfile.TemporaryDirectory() as tmp:
        board = Path(tmp) / "leaderboard.csv"
        challenger.leaderboard.to_csv(board, index=False)
        client.log_artifact(run_id, str(board))
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=challenger.model,
            signature=model_signature(),
            input_example=input_example(),
            pip_requirements=_pip_requirements(),
        )
    return str(info.model_uri)
