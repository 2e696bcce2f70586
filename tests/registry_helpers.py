"""Registered versions without PyCaret: a scikit-learn pipeline in the real ChurnModel wrapper,
logged, registered and promoted by the same tasks the flow runs (a second or two each)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from tasks.data.schema import CATEGORICAL_DOMAINS, NUMERIC_COLUMNS, POSITIVE_LABEL, TARGET
from tasks.registry.aliases import champion_version
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.promote import promote_challenger
from tasks.registry.versions import register_challenger
from tasks.settings import Settings
from tasks.tracking.models import log_challenger
from tasks.tracking.runs import configure_tracking, open_run
from tasks.tracking.training_ids import log_training_ids
from tasks.training.model import ChurnModel, prepare_features
from tasks.training.train import Challenger

MODEL = "telco-churn"


def sklearn_model(
    train: pd.DataFrame, *, handle_unknown: str = "ignore", target: pd.Series | None = None
) -> ChurnModel:
    """One-hot logistic regression on the raw columns (0.1 s), fitted to churn or `target`."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown=handle_unknown), list(CATEGORICAL_DOMAINS)),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), list(NUMERIC_COLUMNS)),
        ]
    )
    pipeline = Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=2000))])
    label = (train[TARGET] == POSITIVE_LABEL) if target is None else target
    pipeline.fit(prepare_features(train), label.astype(int))
    return ChurnModel(pipeline, algorithm="sklearn-lr")


def make_version(
    train: pd.DataFrame,
    *,
    promote: bool = True,
    handle_unknown: str = "ignore",
    period: str = "2026-01",
    target: pd.Series | None = None,
) -> str:
    """Log, register (and by default promote) a model trained on `train` (to churn, or to
    `target`); its version."""
    tracking = configure_tracking.fn(Settings())
    run_id = open_run.fn(tracking, run_name=f"helper-{period}", params={}, tags={})
    model = sklearn_model(train, handle_unknown=handle_unknown, target=target)
    challenger = Challenger(
        model=model,
        algorithm="sklearn-lr",
        estimator="LogisticRegression",
        cv_metrics={},
        leaderboard=pd.DataFrame({"algorithm": ["sklearn-lr"]}),
    )
    uri = log_challenger.fn(run_id, challenger)
    digest = log_training_ids.fn(run_id, train)
    version = register_challenger.fn(
        uri,
        tracking.model_name,
        run_id=run_id,
        period=period,
        verdict="helper",
        training_ids_digest=digest,
    )
    if promote:
        ensure_promotion_lock.fn(tracking.model_name, create=True)
        client = MlflowClient()
        outcome = promote_challenger.fn(
            tracking.model_name,
            version,
            expected_champion=champion_version(client, tracking.model_name),
            decision_run=run_id,
            reason="test helper",
        )
        assert outcome.promoted, outcome.reason
    MlflowClient().set_terminated(run_id, "FINISHED")
    return version


def model_artifact_dir(version: str, name: str = MODEL) -> Path:
    """Local folder of a registered version's model files (local MLflow store only)."""
    mv = MlflowClient().get_model_version(name, version)
    model_id = mv.model_id or str(mv.source).removeprefix("models:/")
    return Path(urlparse(mlflow.get_logged_model(model_id).artifact_location).path)


def alias(name: str, alias_name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias_name).version)
    except mlflow.exceptions.MlflowException:
        return None
