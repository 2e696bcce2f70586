"""The MLflow pyfunc that scores raw snapshot rows, whatever trained the pipeline inside."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from pandas.api.types import is_numeric_dtype

from tasks.data.schema import (
    CATEGORICAL_DOMAINS,
    FEATURES,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    POSITIVE_LABEL,
    SERVICE_COLUMNS,
)

PROBABILITY_COLUMN = "churn_probability"
LABEL_COLUMN = "churn_prediction"

#: Version of the feature set `prepare_features` builds. 1: the 19 raw columns. 2: blank
#: TotalCharges filled, plus log tenure, the number of subscribed services and the average
#: monthly charge, which lift logistic regression's CV ROC-AUC on Telco by ~0.004. Each model
#: keeps the version it was trained on, so an older champion still gets its own inputs.
FEATURE_VERSION = 2


#: Text that means "no value" in a numeric column: a first-month TotalCharges is " " in the CSV.
_BLANK = re.compile(r"\s*")


def keep_pycaret_quiet() -> None:
    """Call before PyCaret is imported (training, or unpickling a model).

    `import pycaret` opens `logs.log` in the current directory unless told otherwise.
    """
    os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)
    _keep_lightgbm_quiet()


def _keep_lightgbm_quiet() -> None:
    """LightGBM `print`s its C++ log ("[LightGBM] [Info] ...", "No further splits ..."), which
    a flow's `log_prints` turns into half the run's log: send it to a Python logger at DEBUG
    instead. Its real failures raise, so nothing a person needs is lost."""
    try:
        import lightgbm
    except ImportError:  # a portable model's environment may not have it, nor need it
        return
    lightgbm.register_logger(
        logging.getLogger("lightgbm"), info_method_name="debug", warning_method_name="debug"
    )


class _QuietPyCaret:
    """Unpickles as a call to `keep_pycaret_quiet()`, so PyCaret imported later in the same
    pickle logs nowhere.

    A pickle is rebuilt in stream order, and `load_context` only runs after the whole model is
    loaded: too late, as the pipeline's classes import PyCaret while it is being rebuilt.
    """

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return keep_pycaret_quiet, ()


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    """A numeric column as float64: blanks, None and NaN become NaN; other text is refused.

    Messages name the column and a count, never a value: they can end up in a client's log.
    """
    values = frame[column]
    if is_numeric_dtype(values):
        return values.astype("float64")
    try:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    except (TypeError, ValueError):  # a guard: pandas coerces even lists and dicts to NaN
        raise ValueError(f"column {column!r} holds values that are not numbers") from None
    blank = values.isna() | values.map(lambda v: isinstance(v, str) and bool(_BLANK.fullmatch(v)))
    unreadable = int((numbers.isna() & ~blank).sum())
    if unreadable:
        raise ValueError(f"column {column!r} has {unreadable} value(s) that are not numbers")
    return numbers


def prepare_features(frame: pd.DataFrame, *, version: int = FEATURE_VERSION) -> pd.DataFrame:
    """The model's input from raw rows: ID and target dropped, blanks and text coerced to numbers,
    and (from version 2) the derived features added."""
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise ValueError(f"input lacks feature columns: {', '.join(missing)}")
    features = frame.loc[:, list(FEATURES)].copy()
    for column in (*INTEGER_COLUMNS, *FLOAT_COLUMNS):
        # Raw CSV rows carry " " for a first-month TotalCharges; the pipeline wants NaN.
        features[column] = _numbers(features, column)
    if version >= 2:
        tenure = features["tenure"]
        # A blank TotalCharges is a customer in their first month: billed tenure x monthly so
        # far (0 at tenure 0). Filled here, the pipeline needs no imputers (a quarter of the
        # scoring time): the suite refuses nulls in every other column.
        features["TotalCharges"] = features["TotalCharges"].fillna(
            features["MonthlyCharges"] * tenure
        )
        # Churn falls fastest in the first months: log tenure is closer to linear in the log-odds.
        features["log_tenure"] = np.log1p(tenure.clip(lower=0))
        features["services"] = (
            (features.loc[:, list(SERVICE_COLUMNS)] == "Yes").sum(axis=1).astype("float64")
        )
        features["avg_monthly_charge"] = features["TotalCharges"] / tenure.clip(lower=1)
        empty = [c for c in (*INTEGER_COLUMNS, *FLOAT_COLUMNS) if features[c].isna().any()]
        if empty:
            raise ValueError(
                f"missing values in {', '.join(empty)}: only TotalCharges may be blank "
                "(the pipeline has no imputers)"
            )
    return features


def _as_categories(features: pd.DataFrame) -> pd.DataFrame:
    """The text features as pandas categoricals: the same probabilities, ~3x faster.

    PyCaret's encoders map values, so a value's category (unseen ones and nulls included)
    scores as its text would (tests/integration/test_scoring.py compares them); but each step copies the
    frame, and a categorical column copies its small codes where text copies a pointer per
    row. Only for the pipelines it was checked on (`ChurnModel.text_as_categories`).
    """
    text = {
        c: "category"
        for c in CATEGORICAL_DOMAINS
        if c in features and not isinstance(features[c].dtype, pd.CategoricalDtype)
    }
    return features.astype(text) if text else features


def _as_text(features: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns (a streamed Parquet read's text) back as text, nulls as NaN, as a
    CSV's text reads: what a pipeline fitted on text was fitted on."""
    text = {c: object for c in features if isinstance(features[c].dtype, pd.CategoricalDtype)}
    return features.astype(text) if text else features


def _brief(exc: BaseException) -> str:
    """An exception as its type and the first line of its message, at most 200 characters."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:200]


class ChurnModel(PythonModel):
    """Wraps a fitted pipeline so `models:/NAME@champion` takes raw Telco rows.

    `predict` returns the churn probability and the label at the model's operating threshold.
    The model checks its input itself (the logged signature lets every value through) and
    raises `ValueError`s that name columns, never values or rows.
    """

    #: Models pickled before feature versions existed were trained on the raw columns.
    feature_version: int = 1
    #: Whether the pipeline gets its text features as categoricals (`_as_categories`): set
    #: for the PyCaret pipelines `train_challenger` fits, whose scores are the same either
    #: way; not for older pickles (imputers fitted on text) or other pipelines (scikit-learn's
    #: OneHotEncoder refuses a categorical's unknown values).
    text_as_categories: bool = False

    def __init__(
        self,
        pipeline: Any,
        *,
        threshold: float = 0.5,
        algorithm: str = "",
        feature_version: int = FEATURE_VERSION,
        text_as_categories: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self.threshold = threshold
        self.algorithm = algorithm
        self.feature_version = feature_version
        self.text_as_categories = text_as_categories

    def __getstate__(self) -> dict[str, Any]:
        # First in the state, so it is rebuilt before the pipeline (and PyCaret) is.
        return {"_quiet_pycaret": _QuietPyCaret(), **self.__dict__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "_quiet_pycaret"})

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of churn for each row."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"expected a DataFrame of raw rows, got {type(frame).__name__}")
        features = prepare_features(frame, version=self.feature_version)
        features = _as_categories(features) if self.text_as_categories else _as_text(features)
        try:
            proba = self.pipeline.predict_proba(features)
        except Exception as exc:
            # `from None`: the chained original (and its traceback, which a model server
            # returns to the client) may quote the input.
            raise ValueError(f"the pipeline could not score the rows: {_brief(exc)}") from None
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
