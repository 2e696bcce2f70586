"""The MLflow pyfunc that scores raw snapshot rows, whatever trained the pipeline inside."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from tasks.schema import FEATURES, FLOAT_COLUMNS, INTEGER_COLUMNS, POSITIVE_LABEL

PROBABILITY_COLUMN = "churn_probability"
LABEL_COLUMN = "churn_prediction"


def keep_pycaret_quiet() -> None:
    """Call before PyCaret is imported (training, or unpickling a model).

    `import pycaret` opens `logs.log` in the current directory unless told otherwise.
    """
    os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)


def prepare_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input from raw rows: ID and target dropped, blanks and text coerced to numbers."""
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise ValueError(f"input lacks feature columns: {', '.join(missing)}")
    features = frame.loc[:, list(FEATURES)].copy()
    for column in (*INTEGER_COLUMNS, *FLOAT_COLUMNS):
        # Raw CSV rows carry " " for a first-month TotalCharges; the pipeline wants NaN.
        features[column] = pd.to_numeric(features[column], errors="coerce").astype("float64")
    return features


class ChurnModel(PythonModel):
    """Wraps a fitted pipeline so `models:/NAME@champion` takes raw Telco rows.

    `predict` returns the churn probability and the label at the model's operating threshold.
    """

    def __init__(self, pipeline: Any, *, threshold: float = 0.5, algorithm: str = "") -> None:
        self.pipeline = pipeline
        self.threshold = threshold
        self.algorithm = algorithm

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of churn for each row."""
        proba = self.pipeline.predict_proba(prepare_features(frame))
        classes = list(getattr(self.pipeline, "classes_", [0, 1]))
        # PyCaret label-encodes the target; the positive class is the last one (1 or "Yes").
        positive = classes.index(POSITIVE_LABEL) if POSITIVE_LABEL in classes else len(classes) - 1
        return np.asarray(proba[:, positive], dtype=float)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        proba = self.predict_proba(model_input)
        labels = np.where(proba >= self.threshold, POSITIVE_LABEL, "No")
        return pd.DataFrame({PROBABILITY_COLUMN: proba, LABEL_COLUMN: labels})
