"""Train the month's challenger with PyCaret. The only module that imports PyCaret."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from tasks.data.schema import TARGET
from tasks.errors import TrainingFailed
from tasks.steps import on_cluster, step
from tasks.training.model import ChurnModel, keep_pycaret_quiet, prepare_features
from tasks.training.plan import DEFAULT_FOLDS, DEFAULT_MODELS, check_trainable, plan_training

logger = logging.getLogger(__name__)


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
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    #: Where it trained: "local", or the Dask worker's address under a Dask task runner.
    worker: str = "local"


@step("train-challenger")
def train_challenger(
    train: pd.DataFrame,
    *,
    seed: int,
    models: Sequence[str] = DEFAULT_MODELS,
    folds: int = DEFAULT_FOLDS,
    budget_minutes: float | None = None,
    distributed: bool = False,
) -> Challenger:
    """Cross-validate `models` on the training split, pick the best by ROC-AUC, refit on all of it.

    `models=["all"]` runs PyCaret's whole zoo; large months are restricted (see `plan_training`).
    `distributed` spreads the models over the Dask cluster this task runs on (PyCaret's
    `FugueBackend`); it needs the flow to run with prefect-dask's `DaskTaskRunner`.
    """
    worker = _dask_worker()
    if distributed and worker is None:
        raise TrainingFailed(
            "distributed training needs a Dask cluster: run the flow with prefect-dask's "
            "DaskTaskRunner (churn-retrain run --dask ADDRESS|local)"
        )
    plan = plan_training(models, folds, len(train))
    for note in plan.notes:
        logger.info(note)
    check_trainable(train, folds=plan.folds)
    started = time.perf_counter()
    keep_pycaret_quiet()
    from pycaret.classification import ClassificationExperiment

    # The pipeline learns from exactly what the pyfunc will hand it at scoring time.
    data = prepare_features(train).assign(**{TARGET: train[TARGET].to_numpy()})
    with _heap_frozen():
        experiment = ClassificationExperiment()
        experiment.setup(
            data=data,
            target=TARGET,
            session_id=seed,
            fold=plan.folds,
            fold_strategy="stratifiedkfold",
            normalize=True,  # z-scores: lbfgs converges in fewer steps, and LR's penalty is fair
            imputation_type=None,  # prepare_features fills the one nullable column; no imputers
            n_jobs=1,  # LightGBM's threads fight joblib's: n_jobs=-1 is 2-18x slower on 2 cores
            html=False,
            verbose=False,
            system_log=False,  # otherwise PyCaret writes logs.log into the current directory
            memory=False,
        )
        try:
            with _parallel_backend(distributed) as parallel:
                best = experiment.compare_models(
                    include=None if plan.models is None else list(plan.models),
                    sort="AUC",  # the default (Accuracy) picks ridge, which has no probabilities
                    n_select=1,
                    errors="raise",
                    verbose=False,
                    budget_time=budget_minutes,
                    parallel=parallel,
                )
        except ValueError as exc:
            raise TrainingFailed(f"PyCaret could not train {plan.models or 'all'}: {exc}") from exc
        leaderboard = experiment.pull()
        if best is None or (isinstance(best, list) and not best):
            raise TrainingFailed(f"PyCaret returned no model for {plan.models or 'all'}")
        top = leaderboard.iloc[0]
        algorithm = str(leaderboard.index[0])
        pipeline = experiment.finalize_model(best)
        estimator = pipeline.steps[-1][1]
        return Challenger(
            model=ChurnModel(pipeline, algorithm=algorithm, text_as_categories=True),
            algorithm=algorithm,
            estimator=type(estimator).__name__,
            cv_metrics={ours: float(top[theirs]) for theirs, ours in _CV_COLUMNS.items()},
            leaderboard=leaderboard.reset_index(names="algorithm"),
            estimator_params={k: v for k, v in estimator.get_params().items() if _loggable(v)},
            train_rows=len(train),
            notes=plan.notes,
            seconds=time.perf_counter() - started,
            worker=worker or "local",
        )


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """The heap so far out of the collector's sight while PyCaret trains.

    PyCaret calls `gc.collect()` after every model; with Prefect, MLflow and GX loaded each
    full collection walks their objects (about 0.45 s each here, a fifth of a small run).
    Frozen (`gc.freeze`), they are skipped; what training itself makes is still collected.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class TrainingOptions:
    """What to cross-validate and how: the retrain's training parameters."""

    seed: int
    models: Sequence[str] = DEFAULT_MODELS
    folds: int = DEFAULT_FOLDS
    budget_minutes: float | None = None
    distributed: bool = False


def train_where_the_flow_runs(train: pd.DataFrame, options: TrainingOptions) -> Challenger:
    """`train_challenger` in the flow's own thread, or on its Dask cluster when it runs on one.

    Not submitted to the default thread pool: a SIGTERM (or Ctrl-C) interrupts the flow's
    thread, but Prefect joins a pool's worker threads before the run can end, so a signal
    during training would wait for the training to finish.
    """
    kwargs = asdict(options)
    if not on_cluster():
        return train_challenger(train, **kwargs)
    return train_challenger.submit(train, **kwargs).result()


def _dask_worker() -> str | None:
    """The address of the Dask worker running this task, or None outside Dask."""
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not inside a Dask task
        return None


@contextmanager
def _parallel_backend(distributed: bool) -> Iterator[Any]:
    """PyCaret's Fugue backend on this task's Dask cluster, or None (serial, in this process)."""
    if not distributed:
        yield None
        return
    from prefect_dask import get_dask_client
    from pycaret.parallel import FugueBackend

    # get_dask_client secedes from the worker's thread pool while the models run, so a
    # one-thread worker does not deadlock waiting for itself.
    with get_dask_client() as client:
        yield FugueBackend(client)


def _loggable(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
