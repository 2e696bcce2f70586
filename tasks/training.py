"""Train the month's challenger with PyCaret. The only module that imports PyCaret."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import task

from tasks.errors import TrainingFailed
from tasks.model import ChurnModel, keep_pycaret_quiet
from tasks.schema import FLOAT_COLUMNS, ID_COLUMN, INTEGER_COLUMNS, TARGET

#: Best quality per second on 2 cores (benchmarks/bench_retrain.py): logistic regression is the
#: usual winner on Telco (CV AUC ~0.847); AdaBoost and LightGBM catch non-linear months.
DEFAULT_MODELS: tuple[str, ...] = ("lr", "ada", "lightgbm")
DEFAULT_FOLDS = 5
#: Below this PyCaret's CV returns nothing useful (it fails silently on tiny data).
MIN_TRAIN_ROWS = 100

# PyCaret's leaderboard column -> our metric name.
_CV_COLUMNS = {
    "AUC": "roc_auc",
    "Accuracy": "accuracy",
    "Recall": "recall",
    "Prec.": "precision",
    "F1": "f1",
    "Kappa": "kappa",
    "MCC": "mcc",
}


@dataclass
class Challenger:
    """A fitted challenger and how it was chosen."""

    model: ChurnModel
    algorithm: str
    estimator: str
    cv_metrics: dict[str, float]
    leaderboard: pd.DataFrame
    estimator_params: dict[str, Any] = field(default_factory=dict)
    train_rows: int = 0
    seconds: float = 0.0


def check_trainable(frame: pd.DataFrame, *, folds: int) -> None:
    """Refuse data PyCaret would train on silently and badly."""
    if len(frame) < MIN_TRAIN_ROWS:
        raise TrainingFailed(
            f"only {len(frame)} training rows; at least {MIN_TRAIN_ROWS} are needed"
        )
    counts = frame[TARGET].value_counts()
    if len(counts) < 2:
        raise TrainingFailed(f"target {TARGET!r} has one class only ({counts.index[0]!r})")
    if counts.min() < folds:
        raise TrainingFailed(
            f"target class {counts.idxmin()!r} has {counts.min()} rows, fewer than {folds} folds"
        )
    for column in (*INTEGER_COLUMNS, *FLOAT_COLUMNS):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise TrainingFailed(f"column {column!r} is not numeric ({frame[column].dtype})")
        if frame[column].isna().all():
            raise TrainingFailed(f"column {column!r} is entirely missing")


@task(name="train-challenger")
def train_challenger(
    train: pd.DataFrame,
    *,
    seed: int,
    models: Sequence[str] = DEFAULT_MODELS,
    folds: int = DEFAULT_FOLDS,
    budget_minutes: float | None = None,
) -> Challenger:
    """Cross-validate `models` on the training split, pick the best by ROC-AUC, refit on all of it."""
    check_trainable(train, folds=folds)
    started = time.perf_counter()
    keep_pycaret_quiet()
    from pycaret.classification import ClassificationExperiment

    experiment = ClassificationExperiment()
    experiment.setup(
        data=train,
        target=TARGET,
        ignore_features=[ID_COLUMN],
        session_id=seed,
        fold=folds,
        fold_strategy="stratifiedkfold",
        n_jobs=1,  # LightGBM's threads fight joblib's: n_jobs=-1 is 2-18x slower on 2 cores
        html=False,
        verbose=False,
        system_log=False,  # otherwise PyCaret writes logs.log into the current directory
        memory=False,
    )
    try:
        best = experiment.compare_models(
            include=list(models),
            sort="AUC",  # the default (Accuracy) picks ridge, which has no probabilities
            n_select=1,
            errors="raise",
            verbose=False,
            budget_time=budget_minutes,
        )
    except ValueError as exc:
        raise TrainingFailed(f"PyCaret could not train {list(models)}: {exc}") from exc
    leaderboard = experiment.pull()
    if best is None or (isinstance(best, list) and not best):
        raise TrainingFailed(f"PyCaret returned no model for {list(models)}")
    top = leaderboard.iloc[0]
    algorithm = str(leaderboard.index[0])
    pipeline = experiment.finalize_model(best)
    estimator = pipeline.steps[-1][1]
    return Challenger(
        model=ChurnModel(pipeline, algorithm=algorithm),
        algorithm=algorithm,
        estimator=type(estimator).__name__,
        cv_metrics={ours: float(top[theirs]) for theirs, ours in _CV_COLUMNS.items()},
        leaderboard=leaderboard.reset_index(names="algorithm"),
        estimator_params={k: v for k, v in estimator.get_params().items() if _loggable(v)},
        train_rows=len(train),
        seconds=time.perf_counter() - started,
    )


def _loggable(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
