"""Batch scoring: chunked output, validation without the target, no champion, bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from flows.parameters import RetrainParameters, ScoreParameters
from flows.retrain import retrain
from flows.score import score
from tasks.data.generate import generate_snapshot
from tasks.data.schema import CATEGORICAL_DOMAINS, TARGET
from tasks.errors import SnapshotRejected, TrackingUnavailable
from tasks.scoring.batch import write_scores
from tasks.training.model import ChurnModel, prepare_features


@pytest.fixture(scope="module")
def sklearn_churn_model() -> ChurnModel:
    """A real (plain scikit-learn) churn model, fitted in a fraction of a second."""
    train = generate_snapshot("2026-01", rows=2000)
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_DOMAINS)),
            remainder="passthrough",
        ),
        LogisticRegression(max_iter=2000),
    )
    features = prepare_features(train).fillna(0)
    pipeline.fit(features, train[TARGET] == "Yes")
    return ChurnModel(_FillNa(pipeline), threshold=0.4, algorithm="sklearn-lr")


class _FillNa:
    """TotalCharges is blank in a customer's first month; plain LR needs a number."""

    def __init__(self, pipeline: object) -> None:
        self.pipeline = pipeline

    def predict_proba(self, features: pd.DataFrame) -> object:
        return self.pipeline.predict_proba(features.fillna(0))  # type: ignore[attr-defined]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_scores_stream_in_chunks_to_csv_and_parquet(
    sklearn_churn_model: ChurnModel, tmp_path: Path, suffix: str
) -> None:
    customers = generate_snapshot("2026-02", rows=2500).drop(columns=[TARGET])
    out = tmp_path / f"scores{suffix}"
    summary = write_scores.fn(
        sklearn_churn_model, customers, output=out, version="7", chunk_rows=1000
    )
    scores = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert len(scores) == summary.rows == 2500
    assert scores["customerID"].tolist() == customers["customerID"].tolist()
    assert scores["churn_probability"].between(0, 1).all()
    above = scores["churn_probability"] >= 0.4
    assert (scores.loc[above, "churn_prediction"] == "Yes").all()
    assert (scores.loc[~above, "churn_prediction"] == "No").all()
    assert summary.predicted_churners == int(above.sum()) > 0
    assert set(scores["model_version"].astype(str)) == {"7"} and scores["scored_at"].nunique() == 1
    # Chunking does not change a single probability.
    whole = sklearn_churn_model.predict_proba(customers)
    assert scores["churn_probability"].to_numpy() == pytest.approx(whole)
    assert not list(tmp_path.glob("*.partial"))


def test_empty_input_is_refused(sklearn_churn_model: ChurnModel, tmp_path: Path) -> None:
    empty = generate_snapshot("2026-02", rows=10).iloc[0:0]
    with pytest.raises(ValueError, match="no rows"):
        write_scores.fn(sklearn_churn_model, empty, output=tmp_path / "s.csv", version="1")


@pytest.mark.usefixtures("prefect_server")
def test_score_flow_with_the_champion(state_home: Path, tmp_path: Path) -> None:
    customers = generate_snapshot("2026-03", rows=800).drop(columns=[TARGET])
    source = tmp_path / "base-{period}.csv"
    customers.to_csv(tmp_path / "base-2026-03.csv", index=False)

    with pytest.raises(TrackingUnavailable, match="no champion"):
        score(ScoreParameters(data=str(source), period="2026-03"))

    retrain(
        RetrainParameters(
            period="2026-02", data="generated", models=["lr"], folds=3, generated_rows=1500
        )
    )
    summary = score(ScoreParameters(data=str(source), period="2026-03"))
    assert summary.rows == 800 and summary.model_version == "1"
    assert Path(summary.output) == state_home / "scores" / "2026-03-v1.csv"
    assert pd.read_csv(summary.output)["customerID"].tolist() == customers["customerID"].tolist()

    broken = customers.drop(columns=["Contract"])
    broken.to_csv(tmp_path / "base-2026-04.csv", index=False)
    out = tmp_path / "never.csv"
    with pytest.raises(SnapshotRejected, match="Contract"):
        score(ScoreParameters(data=str(source), period="2026-04", output=str(out)))
    assert not out.exists()
