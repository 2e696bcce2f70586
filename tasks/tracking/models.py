"""Log the challenger as an MLflow pyfunc model with its signature and pinned requirements."""

from __future__ import annotations

import os
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, Schema

from tasks.data.schema import FEATURES, FLOAT_COLUMNS, ID_COLUMN, INTEGER_COLUMNS
from tasks.steps import step
from tasks.tracking.check import check_tracking as check_tracking
from tasks.tracking.runs import param_text
from tasks.training.train import Challenger

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


def _pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in _MODEL_PACKAGES]


@step("log-challenger")  # never retried: a retry would log a second model into the run
def log_challenger(run_id: str, challenger: Challenger) -> str:
    """Log the challenger's params, CV metrics, leaderboard and pyfunc model; returns its URI."""
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
