"""A promotion finishes or never happened: each write of the promotion path fails in turn.

The invariant, checked after every failure: either the old champion with nothing half-recorded
(aliases, history and the `promoted` tags as before; the failed run is FAILED) or the new one
with everything (alias, history entry, scores at promotion, decision record naming that very
history event). And the next month on a healthy store completes, with the champion's health
known. Writes before the move fail through an injected `OSError(ENOSPC)` at the MLflow or
Prefect call; the steps of the move itself through an error at each registry call; and a real
full disk (a tmpfs of 256 MB, where this machine lets the test mount one) at each stage.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.decision.record import DecisionRecord
from tasks.registry.aliases import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from tasks.registry.history import read_history
from tasks.registry.promote import promote_challenger
from tasks.registry.versions import PROMOTED_TAG
from tasks.report.publish import DECISION_ARTIFACT, REPORT_DIR
from tests.disks import fill, small_disk
from tests.registry_helpers import MODEL, alias, make_version

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST: dict[str, Any] = {"data": "generated", "models": ["lr"], "folds": 2, "generated_rows": 1000}


def _full(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "/state/mlartifacts")


def _registry() -> dict[str, Any]:
    """What the invariant compares: aliases, history, which versions are tagged promoted."""
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{MODEL}'")
    return {
        "champion": alias(MODEL, CHAMPION),
        "previous": alias(MODEL, PREVIOUS_CHAMPION),
        "history": [(e.seq, e.action, e.to_version) for e in read_history(client, MODEL)],
        "promoted": sorted(str(v.version) for v in versions if v.tags.get(PROMOTED_TAG) == "true"),
    }


def _weak_champion() -> DecisionRecord:
    """v1: PyCaret's constant `dummy` model (AUC 0.5), admitted by a zero floor; the default
    rule's floor (0.75) replaces it next month, so that month's run promotes."""
    record = retrain(
        RetrainParameters(period="2026-01", rule={"floor": 0.0}, **{**FAST, "models": ["dummy"]})
    )
    assert record.verdict == "promote-first" and alias(MODEL, CHAMPION) == "1"
    return record


def _assert_everything_recorded(record: DecisionRecord) -> None:
    """The new champion with everything: alias, history event, scores, the decision record."""
    client = MlflowClient()
    assert record.promoted and alias(MODEL, CHAMPION) == record.champion_version_after
    last = read_history(client, MODEL)[-1]
    assert last.to_version == record.champion_version_after
    assert last.decision_run == record.mlflow_run_id
    run = client.get_run(record.mlflow_run_id)
    assert "holdout_roc_auc" in run.data.metrics  # the scores at promotion
    path = mlflow.artifacts.download_artifacts(
        run_id=record.mlflow_run_id, artifact_path=DECISION_ARTIFACT
    )
    stored = json.loads(Path(path).read_text())
    # The record written before the move names the history event the move left.
    assert stored["promotion"]["event"] == last.model_dump(mode="json")
    assert stored["champion_version_after"] == record.champion_version_after


def _failing(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Make the write `where` fail with ENOSPC for the rest of the run."""
    client = MlflowClient
    if where == "plots":
        real_many = client.log_artifacts

        def log_artifacts(self: Any, run_id: str, local_dir: str, artifact_path: Any = None):
            if artifact_path == REPORT_DIR:
                _full()
            return real_many(self, run_id, local_dir, artifact_path)

        monkeypatch.setattr(client, "log_artifacts", log_artifacts)
    elif where == "scores":
        real_batch = client.log_batch

        def log_batch(self: Any, run_id: str, metrics: Any = (), *args: Any, **kwargs: Any):
            if any(m.key.startswith("holdout_") for m in metrics):
                _full()
            return real_batch(self, run_id, metrics, *args, **kwargs)

        monkeypatch.setattr(client, "log_batch", log_batch)
    elif where in ("decision record", "report markdown"):
        name = DECISION_ARTIFACT if where == "decision record" else "report.md"
        real_one = client.log_artifact

        def log_artifact(self: Any, run_id: str, local_path: str, artifact_path: Any = None):
            if local_path.endswith(name):
                _full()
            return real_one(self, run_id, local_path, artifact_path)

        monkeypatch.setattr(client, "log_artifact", log_artifact)
    else:
        assert where == "prefect artifact"
        import prefect.artifacts

        monkeypatch.setattr(prefect.artifacts, "create_table_artifact", _full)


BEFORE_THE_MOVE = ["plots", "scores", "decision record", "report markdown", "prefect artifact"]


def test_a_write_that_fails_before_the_move_leaves_the_old_champion_untouched(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _weak_champion()
    before = _registry()
    for where in BEFORE_THE_MOVE:  # the same month, failing at each write in turn
        with monkeypatch.context() as patch:
            _failing(patch, where)
            with pytest.raises(OSError, match="No space left"):
                retrain(RetrainParameters(period="2026-02", **FAST))
        assert _registry() == before, where  # nothing moved, nothing half-recorded
        failed = mlflow.search_runs(
            filter_string="attributes.run_name = 'retrain-2026-02'",
            order_by=["start_time DESC"],
            search_all_experiments=True,
        )
        assert failed.iloc[0]["status"] == "FAILED", where

    # The next month, on a healthy store: it completes, and v1's health is known.
    record = retrain(RetrainParameters(period="2026-03", **FAST))
    assert record.verdict == "replace-below-floor", record.reason
    assert record.champion_health is not None and record.champion_health.state != "unknown"
    _assert_everything_recorded(record)
    assert _registry()["history"][:1] == before["history"]


#: Each registry call of the move, and how to recognise it.
MOVE_STEPS: dict[str, tuple[str, Callable[..., bool]]] = {
    "champion alias": ("set_registered_model_alias", lambda n, a, v: a == CHAMPION),
    "previous-champion alias": (
        "set_registered_model_alias",
        lambda n, a, v: a == PREVIOUS_CHAMPION,
    ),
    "history entry": ("set_registered_model_tag", lambda n, k, v: k.startswith("history.")),
    "promoted tag": ("set_model_version_tag", lambda n, v, k, val: k == PROMOTED_TAG),
    "challenger alias off": ("delete_registered_model_alias", lambda n, a: a == CHALLENGER),
}


@pytest.mark.parametrize("step", list(MOVE_STEPS))
def test_a_step_of_the_move_that_fails_is_undone(
    step: str, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = generate_snapshot("2026-01", seed=1, rows=600)
    assert make_version(train) == "1"
    assert make_version(train, promote=False, period="2026-02") == "2"
    MlflowClient().set_registered_model_alias(MODEL, CHALLENGER, "2")  # as registration does
    before = _registry()
    method, matches = MOVE_STEPS[step]
    real = getattr(MlflowClient, method)

    def failing(self: Any, *args: Any) -> Any:
        if matches(*args):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, method, failing)
        with pytest.raises(OSError, match="No space left"):
            promote_challenger.fn(MODEL, "2", expected_champion="1", decision_run="r")
    assert _registry() == before
    assert alias(MODEL, CHALLENGER) == "2"

    # Healthy again: the same promotion goes through, whole.
    outcome = promote_challenger.fn(MODEL, "2", expected_champion="1", decision_run="r")
    assert outcome.promoted and _registry()["champion"] == "2"
    assert _registry()["history"][-1][2] == "2" and "2" in _registry()["promoted"]


# --- A real full disk --------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


#: Stages of the promotion path (the flow's own steps), the disk filled right before each.
FULL_BEFORE = {
    "report": "flows.retrain.log_comparison_report",
    "record": "flows.retrain.record_decision",
    "move": "flows.retrain.promote_or_mark",
}


@pytest.mark.parametrize("stage", list(FULL_BEFORE))
def test_a_full_disk_at_each_stage_of_the_promotion(
    stage: str, disk: Path, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = disk / "state with spaces 'and quotes'"
    monkeypatch.setenv("CHURN_RETRAIN_HOME", str(home))
    _weak_champion()
    before = _registry()
    module, name = FULL_BEFORE[stage].rsplit(".", 1)
    import importlib

    target = importlib.import_module(module)
    real = getattr(target, name)
    fillers: list[Path] = []

    def filled_first(*args: Any, **kwargs: Any) -> Any:
        fillers.append(fill(disk))
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(target, name, filled_first)
        with pytest.raises(Exception) as caught:
            retrain(RetrainParameters(period="2026-02", **FAST))
    assert fillers, "the stage was never reached"
    for filler in fillers:
        filler.unlink()
    assert _registry() == before, caught.value  # the old champion, nothing half-recorded
    record = retrain(RetrainParameters(period="2026-03", **FAST))
    assert record.champion_health is not None and record.champion_health.state != "unknown"
    _assert_everything_recorded(record)
    shutil.rmtree(home, ignore_errors=True)
