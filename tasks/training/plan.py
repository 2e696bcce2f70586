"""What to train on a month: models, folds, and whether the month is trainable at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.data.schema import FLOAT_COLUMNS, INTEGER_COLUMNS, TARGET
from tasks.errors import TrainingFailed

if TYPE_CHECKING:  # the CLI imports the defaults here before it starts the Prefect server
    import pandas as pd

#: Best quality per second on 2 cores (benchmarks/bench_models.py): logistic regression on the
#: derived features is the usual winner on Telco (CV AUC ~0.85); LightGBM catches non-linear
#: months and, unlike AdaBoost, still scales at 700k rows.
DEFAULT_MODELS: tuple[str, ...] = ("lr", "lightgbm")
DEFAULT_FOLDS = 5
#: `models=["all"]` asks for PyCaret's whole model zoo (about 15 models; minutes, not seconds).
ALL_MODELS = "all"
#: From this many training rows on, only models that scale near-linearly are cross-validated,
#: with at most 3 folds: boosting over full trees, forests, SVMs and KNN take hours at 700k rows.
LARGE_MONTH_ROWS = 100_000
SCALABLE_MODELS: frozenset[str] = frozenset({"lr", "lightgbm", "ridge", "lda", "nb", "dummy"})
LARGE_MONTH_MAX_FOLDS = 3
#: Below this PyCaret's CV returns nothing useful (it fails silently on tiny data).
MIN_TRAIN_ROWS = 100
#: The default cap on training rows (`RetrainParameters.max_train_rows`, applied by
#: `tasks.training.sample`): on generated months neither the challenger's CV nor its holdout
#: ROC-AUC gained more than 0.001 past it (benchmarks/bench_learning_curve.py; README, *Training
#: rows*). It is below LARGE_MONTH_ROWS: that plan applies only with a higher cap, or none.
DEFAULT_MAX_TRAIN_ROWS = 50_000


@dataclass(frozen=True)
class TrainingPlan:
    """What will actually be cross-validated, after adapting the request to the data size."""

    models: tuple[str, ...] | None  # None: PyCaret's whole zoo
    folds: int
    notes: tuple[str, ...] = ()


def plan_training(models: Sequence[str], folds: int, rows: int) -> TrainingPlan:
    """Adapt the requested models and folds to the number of training rows."""
    wanted = None if list(models) == [ALL_MODELS] else tuple(models)
    if rows < LARGE_MONTH_ROWS:
        return TrainingPlan(models=wanted, folds=folds)
    notes = []
    kept = tuple(m for m in (wanted or sorted(SCALABLE_MODELS - {"dummy"})) if m in SCALABLE_MODELS)
    if not kept:
        kept = ("lr", "lightgbm")
    if kept != wanted:
        notes.append(f"{rows:,} rows: cross-validating only {', '.join(kept)}")
    if folds > LARGE_MONTH_MAX_FOLDS:
        notes.append(f"{rows:,} rows: {LARGE_MONTH_MAX_FOLDS} folds instead of {folds}")
        folds = LARGE_MONTH_MAX_FOLDS
    return TrainingPlan(models=kept, folds=folds, notes=tuple(notes))


def check_trainable(frame: pd.DataFrame, *, folds: int) -> None:
    """Refuse data PyCaret would train on silently and badly."""
    from pandas.api.types import is_numeric_dtype

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
        if not is_numeric_dtype(frame[column]):
            raise TrainingFailed(f"column {column!r} is not numeric ({frame[column].dtype})")
        if frame[column].isna().all():
            raise TrainingFailed(f"column {column!r} is entirely missing")
