"""The retrain flow end to end under a real (temporary) Prefect API, MLflow in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.errors import SnapshotRejected
from tasks.registry.aliases import CHAMPION, PREVIOUS_CHAMPION

pytestmark = pytest.mark.usefixtures("prefect_server")

MODEL = "telco-churn"
FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": 1500}


def _client() -> MlflowClient:
    return MlflowClient()


def _champion() -> str | None:
    try:
        return str(_client().get_model_version_by_alias(MODEL, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        return None


def _decision_artifact(run_id: str) -> dict[str, object]:
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="decision.json")
    return json.loads(Path(path).read_text())


def test_two_runs_promote_then_keep(state_home: Path) -> None:
    first = retrain(RetrainParameters(period="2026-01", **FAST))
    assert first.verdict == "promote-first" and first.promoted
    assert first.champion is None and first.champion_version_after == "1"
    assert _champion() == "1"

    second = retrain(RetrainParameters(period="2026-01", **FAST))
    # Same data and seed: the fair holdout is the first run's holdout (the only rows the
    # champion never saw), so the challenger is trained on the same rows and ties exactly.
    assert second.verdict == "tie" and not second.promoted
    assert second.decision is not None and second.decision.interval is not None
    assert second.decision.interval.lower == second.decision.interval.upper == 0.0
    assert second.holdout_split is not None
    assert second.holdout_split.excluded_rows == first.train_rows
    assert second.champion is not None and second.champion.version == "1"
    assert second.challenger.holdout["roc_auc"] == pytest.approx(second.champion.holdout["roc_auc"])
    assert second.data_digest == first.data_digest
    # The drift gate: nothing to compare with at first, then the same month shows no drift.
    assert first.drift == "skipped: no champion yet"
    assert second.drift is not None and second.drift.startswith("no drift against champion v1")
    assert _champion() == "1"

    client = _client()
    assert client.get_model_version(MODEL, "2").tags["verdict"] == "tie"
    assert client.get_model_version(MODEL, "2").tags["promoted"] == "false"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "2"
    for record in (first, second):
        run = client.get_run(record.mlflow_run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["decision.verdict"] == record.verdict
        assert run.data.tags["data.digest"] == record.data_digest
        assert run.data.metrics["holdout_roc_auc"] == pytest.approx(
            record.challenger.holdout["roc_auc"]
        )
        saved = _decision_artifact(record.mlflow_run_id)
        assert saved["verdict"] == record.verdict and saved["rule"]["metric"] == "roc_auc"
        assert (saved["promoted"], saved["reason"], saved["champion_version_after"]) == (
            record.promoted,
            record.reason,
            record.champion_version_after,
        )
        assert saved["decision"]["verdict"] == record.verdict
    # Everything stayed under the state directory.
    assert (state_home / "mlflow.db").is_file() and (state_home / "mlartifacts").is_dir()


def test_a_better_challenger_moves_the_alias(state_home: Path) -> None:
    # A constant-probability champion (PyCaret's "dummy", AUC 0.5) admitted by a zero floor.
    weak = retrain(
        RetrainParameters(period="2026-01", rule={"floor": 0.0}, **{**FAST, "models": ["dummy"]})
    )
    assert weak.verdict == "promote-first"
    assert weak.challenger.holdout["roc_auc"] == pytest.approx(0.5)

    record = retrain(RetrainParameters(period="2026-02", **FAST))
    # The default rule's floor (0.75) finds the constant champion unfit: replaced on evidence.
    assert record.verdict == "replace-below-floor" and record.promoted
    assert record.champion is not None and record.champion.version == "1"
    assert record.challenger.holdout["roc_auc"] > 0.75
    assert _champion() == "2"
    assert str(_client().get_model_version_by_alias(MODEL, PREVIOUS_CHAMPION).version) == "1"


def test_champion_predicts_on_raw_rows(state_home: Path) -> None:
    retrain(RetrainParameters(period="2026-01", **FAST))
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CHAMPION}")
    rows = generate_snapshot("2026-05", seed=3, rows=50).drop(columns=["Churn"])
    out = model.predict(rows)
    assert list(out.columns) == ["churn_probability", "churn_prediction"]
    assert out["churn_probability"].between(0, 1).all() and len(out) == 50
    assert set(out["churn_prediction"]) <= {"Yes", "No"}


def test_broken_column_is_rejected_before_training(state_home: Path, tmp_path: Path) -> None:
    retrain(RetrainParameters(period="2026-01", **FAST))
    client = _client()
    runs_before = len(
        client.search_runs([client.get_experiment_by_name("churn-retrain").experiment_id])
    )
    versions_before = len(client.search_model_versions(f"name='{MODEL}'"))

    frame = generate_snapshot("2026-02", seed=42, rows=1500)
    frame["MonthlyCharges"] = frame["MonthlyCharges"].astype(str)
    frame.loc[::7, "MonthlyCharges"] = "n/a"
    bad = tmp_path / "2026-02.csv"
    frame.to_csv(bad, index=False)

    with pytest.raises(SnapshotRejected, match=r"(?s)2026-02\.csv rejected.*MonthlyCharges"):
        retrain(
            RetrainParameters(period="2026-02", **{**FAST, "data": str(tmp_path / "{period}.csv")})
        )

    assert _champion() == "1"
    assert len(client.search_model_versions(f"name='{MODEL}'")) == versions_before
    experiment_id = client.get_experiment_by_name("churn-retrain").experiment_id
    assert len(client.search_runs([experiment_id])) == runs_before


def test_parameters_are_bounded() -> None:
    with pytest.raises(ValueError, match="period"):
        RetrainParameters(period="2026-13")
    with pytest.raises(ValueError, match="folds"):
        RetrainParameters(folds=1)
    with pytest.raises(ValueError, match="holdout_fraction"):
        RetrainParameters(holdout_fraction=0.9)
    schema = RetrainParameters.model_json_schema()
    assert all("description" in field for field in schema["properties"].values())


def test_a_period_is_promoted_at_most_once(state_home: Path) -> None:
    first = retrain(
        RetrainParameters(period="2026-06", rule={"floor": 0.0}, **{**FAST, "models": ["dummy"]})
    )
    assert first.promoted and first.idempotency_key == "telco-churn:2026-06"
    # A much better model for the same month would win, but the month already promoted once.
    again = retrain(RetrainParameters(period="2026-06", rule={"floor": 0.0}, **FAST))
    assert again.verdict == "already-promoted" and not again.promoted
    assert again.decision.superseded == "promote"
    assert "version 1 was already promoted" in again.reason
    assert _champion() == "1"
    # The next month is free to promote it (the default floor finds the champion unfit).
    assert retrain(RetrainParameters(period="2026-07", **FAST)).verdict == "replace-below-floor"
    assert _champion() == "3"


def test_period_defaults_to_the_month_of_the_scheduled_start(state_home: Path) -> None:
    from datetime import UTC, datetime

    record = retrain(RetrainParameters(**FAST))
    assert record.period == datetime.now(UTC).strftime("%Y-%m")
