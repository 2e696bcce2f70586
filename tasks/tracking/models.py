"""Log the challenger as an MLflow pyfunc model with its signature and pinned requirements."""

from __future__ import annotations

import functools
import io
import os
import pickle
import tempfile
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tasks.data.schema import FEATURES, ID_COLUMN
from tasks.steps import step
from tasks.tracking.check import check_tracking as check_tracking
from tasks.tracking.lineage import TRAINING, run_dataset, with_dataset
from tasks.tracking.runs import param_text
from tasks.training.train import Challenger

#: The distributions every model needs, whatever its pipeline holds. Their requirements are
#: pinned too (see `_pip_requirements`).
_MODEL_PACKAGES = (
    "pycaret",
    "scikit-learn",
    "pandas",
    "numpy",
    "cloudpickle",
    "lightgbm",
    "mlflow",
)


def model_signature() -> ModelSignature:
    """Raw rows in, probability and label out.

    Every input column is `Any` and optional: MLflow enforces a signature before the model
    runs, and its errors quote the whole input (customer IDs included) into the caller's log
    and a served model's HTTP response. The model checks its own input instead (the 19 feature
    columns; numbers, or numeric text, in the numeric ones; a blank TotalCharges) with
    messages that name columns only. The signature still lists the columns the model reads.
    """
    inputs: list[Any] = [ColSpec(AnyType(), c, required=False) for c in (ID_COLUMN, *FEATURES)]
    outputs: list[Any] = [
        ColSpec("double", "churn_probability"),
        ColSpec("string", "churn_prediction"),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


#: Two made-up customers (no real customer's data ends up in a model artifact), written out
#: so that logging a model never imports the synthetic-data generator.
_EXAMPLE_ROWS = (
    ("9524-YNMAX", "Female", 0, "Yes", "Yes", 31, "Yes", "Yes", "DSL", "Yes", "No", "No", "Yes",
     "Yes", "Yes", "Month-to-month", "No", "Electronic check", 79.48, 2479.37),
    ("7804-NPQNA", "Male", 0, "No", "Yes", 6, "Yes", "Yes", "DSL", "No", "No", "No", "Yes",
     "Yes", "No", "Month-to-month", "Yes", "Electronic check", 65.01, 389.0),
)  # fmt: skip


def input_example() -> pd.DataFrame:
    """Raw snapshot rows as the model receives them (no target column)."""
    return pd.DataFrame(list(_EXAMPLE_ROWS), columns=[ID_COLUMN, *FEATURES])


def _pip_requirements(model: Any = None) -> list[str]:
    """`name==version` for everything the model needs to load and serve, as installed here.

    That is `_MODEL_PACKAGES`, the distributions whose modules the model's pickle refers to,
    and all their requirements, transitively: a virtualenv built from the model's
    `requirements.txt` then holds the versions it was trained with, so nothing warns of a
    mismatch when it is unpickled, and nothing is re-resolved (inference takes ~8 s).
    """
    roots = set(_MODEL_PACKAGES)
    if model is not None:
        roots |= _pickled_distributions(model)
    return list(_pinned_closure(frozenset(roots)))


def _pickled_distributions(model: Any) -> set[str]:
    """The installed distributions providing the modules `model`'s pickle imports."""
    import cloudpickle

    modules: set[str] = set()

    class _Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            modules.add(module.partition(".")[0])
            return super().find_class(module, name)

    _Recorder(io.BytesIO(cloudpickle.dumps(model))).load()
    providers = _module_distributions()
    return {dist for module in modules for dist in providers.get(module, ())}


@functools.cache
def _module_distributions() -> Mapping[str, list[str]]:
    return packages_distributions()  # ~0.8 s: every installed distribution's file list


@functools.cache
def _pinned_closure(roots: frozenset[str]) -> tuple[str, ...]:
    """`roots` and their requirements (markers evaluated here, extras as requested), pinned."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(root) for root in sorted(roots)]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:  # an optional dependency nobody installed here
            continue
        name = dist.metadata["Name"]
        pins[canonicalize_name(name)] = f"{name}=={dist.version}"
        extras = requirement.extras or {""}
        for text in dist.requires or ():
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    return tuple(sorted(pins.values(), key=str.lower))


@step("log-challenger")  # never retried: a retry would log a second model into the run
def log_challenger(run_id: str, challenger: Challenger) -> str:
    """Log the challenger's params, leaderboard, pyfunc model and CV metrics (the run's and the
    model's, tied to the run's training dataset when one is logged); returns its URI."""
    import cloudpickle

    import tasks.training.model

    # uv.lock would be copied into every model when run from the checkout; pins suffice.
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    # Embed the wrapper class in the pickle so loading needs no copy of this project.
    cloudpickle.register_pickle_by_value(tasks.training.model)
    client = MlflowClient()
    client.log_batch(
        run_id,
        params=[
            mlflow.entities.Param("challenger.algorithm", challenger.algorithm),
            mlflow.entities.Param("challenger.estimator", challenger.estimator),
            *(
                mlflow.entities.Param(f"challenger.param.{k}", param_text(v))
                for k, v in sorted(challenger.estimator_params.items())
            ),
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
            pip_requirements=_pip_requirements(challenger.model),
        )
    # `start_run` ended the run (FINISHED) on the way out; the retrain goes on in it. RUNNING
    # again, so a run killed from here on shows as interrupted (tasks/tracking/runs.py).
    client.update_run(run_id, status="RUNNING")
    # The CV metrics after the model, as its own tied to the training dataset (its page lists
    # the data it was trained on); the run gets them too. Logged before the model, the model
    # would copy them without the dataset (a SQL store keeps none on a run's metrics).
    trained_on = run_dataset(client.get_run(run_id), TRAINING)
    cv_metrics = [
        mlflow.entities.Metric(f"cv_{k}", v, 0, 0, model_id=info.model_id)
        for k, v in challenger.cv_metrics.items()
    ]
    if cv_metrics:
        client.log_batch(run_id, metrics=with_dataset(cv_metrics, trained_on))
    return str(info.model_uri)
