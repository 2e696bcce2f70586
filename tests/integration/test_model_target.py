"""The model is a value: two segment models retrain from one state directory and one Prefect
server without touching each other, and one is rolled back while the other stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from flows.parameters import RetrainParameters, RollbackParameters
from flows.retrain import retrain
from flows.rollback import rollback
from tasks.data.generate import generate_snapshot
from tasks.errors import SnapshotRejected
from tasks.registry.history import read_history
from tasks.registry.lease import lease_name
from tasks.registry.lock import promotion_lock_name
from tasks.target import ModelTarget

FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": 2500}
MONTHLY = {"name": "churn-m2m", "rows": "Contract == 'Month-to-month'"}
FIBRE = {"name": "churn-fibre", "rows": "InternetService == 'Fiber optic'"}


def test_a_target_checks_its_filter_and_keeps_its_customers() -> None:
    with pytest.raises(ValidationError, match="not a filter over the snapshot's columns"):
        ModelTarget(rows="Region == 'North'")
    frame = generate_snapshot("2026-01", rows=500)
    kept = ModelTarget(**MONTHLY).select(frame, source="m.csv")
    assert len(kept) == (frame["Contract"] == "Month-to-month").sum() > 0
    assert set(kept["Contract"]) == {"Month-to-month"} and list(kept.index) == list(
        range(len(kept))
    )
    with pytest.raises(SnapshotRejected, match="no customer matches"):
        ModelTarget(rows="tenure > 1000").select(frame, source="m.csv")


def _champion(client: MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, "champion").version)


@pytest.mark.usefixtures("prefect_server")
def test_two_segment_models_share_a_state_directory_and_never_touch_each_other(
    state_home: Path,
) -> None:
    weak = {**FAST, "models": ["dummy"], "rule": {"floor": 0.0}}  # a constant-score champion
    first = retrain(RetrainParameters(period="2026-01", model=MONTHLY, **weak))
    fibre = retrain(RetrainParameters(period="2026-01", model=FIBRE, **FAST))
    assert (first.model_name, fibre.model_name) == ("churn-m2m", "churn-fibre")
    assert first.promoted and fibre.promoted  # each its own first champion
    month = generate_snapshot("2026-01", rows=2500)
    assert first.rows == (month["Contract"] == "Month-to-month").sum()
    assert fibre.rows == (month["InternetService"] == "Fiber optic").sum()
    assert "[Contract == 'Month-to-month']" in first.data_source

    # The monthly model's next month replaces its unfit champion; the fibre model is untouched.
    second = retrain(RetrainParameters(period="2026-02", model=MONTHLY, **FAST))
    assert second.verdict == "replace-below-floor" and second.champion_version_after == "2"
    assert second.champion is not None and second.champion.version == "1"
    assert second.champion_health is not None and second.champion_health.version == "1"
    client = MlflowClient()
    assert (_champion(client, "churn-m2m"), _champion(client, "churn-fibre")) == ("2", "1")

    event = rollback(RollbackParameters(model={"name": "churn-m2m"}, reason="segment audit"))
    assert (event.from_version, event.to_version) == ("2", "1")
    assert (_champion(client, "churn-m2m"), _champion(client, "churn-fibre")) == ("1", "1")
    monthly_moves = [(e.action, e.to_version) for e in read_history(client, "churn-m2m")]
    fibre_moves = [(e.action, e.to_version) for e in read_history(client, "churn-fibre")]
    assert monthly_moves == [("promote", "1"), ("promote", "2"), ("rollback", "1")]
    assert fibre_moves == [("promote", "1")]
    # Each model serialises its own alias moves, and holds no lease once done.
    assert promotion_lock_name("churn-m2m") != promotion_lock_name("churn-fibre")
    names = {m.name for m in client.search_registered_models()}
    assert {"churn-m2m", "churn-fibre"} <= names
    assert not {lease_name("churn-m2m"), lease_name("churn-fibre")} & names
    # The fibre model's next month compares with its own champion, not the monthly one's.
    again = retrain(RetrainParameters(period="2026-02", model=FIBRE, **FAST))
    assert again.champion is not None and again.champion.version == "1"
    assert again.champion_health is not None and again.holdout_split is not None
    assert again.holdout_split.excluded_rows > 0  # its own champion's training customers
