"""Lineage and model cards through the real retrain flow (real PyCaret, MLflow in a temp dir, the
session's Prefect API): each run's training and holdout datasets, with no rows uploaded; the
logged model tied to both; each version's card, written before the move; rollback's line."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.decision.record import DecisionRecord
from tasks.registry.aliases import CHAMPION
from tasks.registry.card import read_record
from tasks.registry.history import read_history
from tasks.registry.promote import promote_challenger, rollback_champion
from tasks.report.card import CARD_TITLE, model_card, rollback_line
from tasks.settings import Settings
from tasks.tracking.lineage import CONTEXT_TAG, HOLDOUT, TRAINING
from tasks.tracking.runs import configure_tracking
from tests.conftest import REMOTE_TRACKING_VARS
from tests.registry_helpers import MODEL, alias, make_version

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST: dict[str, Any] = {"data": "generated", "models": ["lr"], "folds": 2, "generated_rows": 1000}


def _full(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "/state/mlflow.db")


Months = tuple[DecisionRecord, DecisionRecord]


@pytest.fixture(scope="module")
def two_months(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[Months]:
    """v1: the constant `dummy` model admitted by a zero floor; v2 replaces it the next month
    (the default floor), so the second month promotes. One state directory for the module (as
    `state_home`, for four real runs less): each test points MLflow at it again (`_here`)."""
    saved = dict(os.environ)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_RETRAIN_HOME", str(tmp_path_factory.mktemp("lineage") / "state"))
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CHURN_RETRAIN_TRACKING_URI"):
            patch.delenv(name, raising=False)
        for name in REMOTE_TRACKING_VARS:
            patch.delenv(name, raising=False)
        patch.setitem(Settings.model_config, "env_file", None)
        dummy = {**FAST, "models": ["dummy"]}
        first = retrain(RetrainParameters(period="2026-01", rule={"floor": 0.0}, **dummy))
        second = retrain(RetrainParameters(period="2026-02", **FAST))
        assert (first.verdict, second.verdict) == ("promote-first", "replace-below-floor")
        yield first, second
    os.environ.clear()
    os.environ.update(saved)


def _here(months: Months) -> Months:
    configure_tracking.fn(Settings())  # this module's store, whatever a test before used
    return months


def _datasets(run_id: str) -> dict[str, Any]:
    """The run's dataset inputs by context."""
    inputs = MlflowClient().get_run(run_id).inputs.dataset_inputs
    return {next(t.value for t in item.tags if t.key == CONTEXT_TAG): item for item in inputs}


def _artifacts(run_id: str, path: str | None = None) -> list[str]:
    client = MlflowClient()
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(run_id, item.path) if item.is_dir else [item.path]
    return found


def test_each_run_logs_its_month_as_training_and_holdout_datasets_without_rows(
    two_months: Months,
) -> None:
    _, record = _here(two_months)
    datasets = _datasets(record.mlflow_run_id)
    assert set(datasets) == {TRAINING, HOLDOUT}
    hex_digest = record.data_digest.removeprefix("sha256:")
    for context, rows in ((TRAINING, record.train_rows), (HOLDOUT, record.holdout_rows)):
        item = datasets[context]
        dataset, tags = item.dataset, {t.key: t.value for t in item.tags}
        assert dataset.name == f"2026-02-{context}"
        assert dataset.digest == hex_digest  # what the decision record shows, after `sha256:`
        assert json.loads(dataset.profile)["num_rows"] == rows
        assert record.data_source in dataset.source  # the generated month: a code source
        assert tags["data.digest"] == record.data_digest
        assert tags["data.rows"] == str(record.rows) and tags["period"] == "2026-02"
        columns = [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]]
        assert "customerID" in columns and "Churn" in columns
    # No rows went anywhere: no customer of the month in what the datasets hold, no data file.
    month = generate_snapshot("2026-02", seed=42, rows=1000)
    stored = " ".join(
        f"{i.dataset.source} {i.dataset.schema} {i.dataset.profile}" for i in datasets.values()
    )
    assert not [c for c in month["customerID"].head(200) if c in stored]
    files = _artifacts(record.mlflow_run_id)
    assert "decision.json" in files
    assert not [f for f in files if "dataset" in f or f.endswith(".parquet")], files


def test_the_registered_version_links_to_its_runs_datasets(two_months: Months) -> None:
    _, record = _here(two_months)
    client = MlflowClient()
    version = client.get_model_version(MODEL, record.challenger.version or "")
    assert version.run_id == record.mlflow_run_id
    [output] = client.get_run(record.mlflow_run_id).outputs.model_outputs
    assert version.source == f"models:/{output.model_id}"  # the version is this logged model
    model = client.get_logged_model(output.model_id)
    linked = {(m.key, m.dataset_name) for m in model.metrics or []}
    assert ("cv_roc_auc", "2026-02-training") in linked  # what it was trained on
    assert ("holdout_roc_auc", "2026-02-holdout") in linked  # what it was judged on
    digests = {m.dataset_digest for m in model.metrics or [] if m.dataset_name}
    assert digests == {record.data_digest.removeprefix("sha256:")}
    # The run keeps one value per holdout metric: the model's copy is the same point.
    history = client.get_metric_history(record.mlflow_run_id, "holdout_roc_auc")
    assert [p.value for p in history] == [record.challenger.holdout["roc_auc"]]


def test_each_version_carries_its_card_and_a_rollback_appends_to_the_restored_one(
    two_months: Months,
) -> None:
    first, second = _here(two_months)
    client = MlflowClient()
    card_1 = client.get_model_version(MODEL, "1").description
    card_2 = client.get_model_version(MODEL, "2").description
    assert card_1 == model_card(read_record(first.mlflow_run_id))
    assert card_2 == model_card(read_record(second.mlflow_run_id))
    assert card_2.startswith(f"{CARD_TITLE}: {MODEL} v2, 2026-02: **replace-below-floor**")
    assert "- **Champion** v2 is champion: replaced v1 (moved by" in card_2
    assert "the first champion" in card_1 and second.data_digest in card_2

    event = rollback_champion.fn(MODEL, expected_champion="2", reason="v2 mis-scores a tariff")
    assert alias(MODEL, CHAMPION) == "1" and read_history(client, MODEL)[-1] == event
    restored = client.get_model_version(MODEL, "1").description
    assert restored == f"{card_1}\n{rollback_line(event)}"
    assert restored.endswith(
        f"from v2, by {event.by} at {event.at} (history #3): v2 mis-scores a tariff"
    )
    assert client.get_model_version(MODEL, "2").description == card_2  # untouched


def test_a_card_that_cannot_be_written_stops_the_promotion_before_the_move(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    retrain(
        RetrainParameters(period="2026-01", rule={"floor": 0.0}, **{**FAST, "models": ["dummy"]})
    )
    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "update_model_version", _full)
        with pytest.raises(OSError, match="No space left on device"):
            retrain(RetrainParameters(period="2026-02", **FAST))
    assert alias(MODEL, CHAMPION) == "1" and len(read_history(MlflowClient(), MODEL)) == 1
    [failed] = mlflow.search_runs(
        filter_string="attributes.run_name = 'retrain-2026-02'", search_all_experiments=True
    ).itertuples()
    assert failed.status == "FAILED"
    assert not MlflowClient().get_model_version(MODEL, "2").description  # no card, no move


def test_a_move_that_fails_puts_the_card_back(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_tracking.fn(Settings())
    train = generate_snapshot("2026-01", seed=1, rows=600)
    assert make_version(train) == "1"
    assert make_version(train, promote=False, period="2026-02") == "2"
    assert promote_challenger.fn(MODEL, "2", expected_champion="1", decision_run="r").promoted
    client = MlflowClient()
    client.update_model_version(MODEL, "1", description="written by hand")
    real = MlflowClient.set_registered_model_alias

    def failing(self: MlflowClient, name: str, alias_name: str, version: str) -> None:
        if alias_name == CHAMPION:
            _full()
        real(self, name, alias_name, version)

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_registered_model_alias", failing)
        with pytest.raises(OSError, match="No space left on device"):
            rollback_champion.fn(MODEL, expected_champion="2", reason="try")
    assert alias(MODEL, CHAMPION) == "2"
    assert client.get_model_version(MODEL, "1").description == "written by hand"  # line gone

    # Healthy again: the rollback goes through and the hand-written note keeps its line.
    event = rollback_champion.fn(MODEL, expected_champion="2", reason="again")
    assert client.get_model_version(MODEL, "1").description == (
        f"written by hand\n{rollback_line(event)}"
    )
