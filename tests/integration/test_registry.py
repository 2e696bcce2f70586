"""Safe promotion: the lock, the re-read, the history, rollback and status (real MLflow in a temp
dir, the session's real Prefect API for the global concurrency limit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cli.main import main
from tasks.data.generate import generate_snapshot
from tasks.errors import EXIT_CONFLICT, Conflict, PromotionLockMissing, RollbackRefused
from tasks.registry import history as registry
from tasks.registry.aliases import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from tasks.registry.champion import find_missing_champion
from tasks.registry.history import read_history
from tasks.registry.lock import ensure_promotion_lock, promotion_lock_name
from tasks.registry.promote import promote_challenger, rollback_champion
from tasks.registry.status import registry_status
from tasks.registry.versions import register_challenger
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking
from tests.registry_helpers import MODEL, alias, make_version

pytestmark = pytest.mark.usefixtures("prefect_server")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def january(state_home: Path) -> object:
    configure_tracking.fn(Settings())
    return generate_snapshot("2026-01", rows=800)


def _history() -> list[registry.HistoryEvent]:
    return read_history(MlflowClient(), MODEL)


def test_first_promotion_is_recorded(january: object) -> None:
    version = make_version(january)
    assert (version, alias(MODEL, CHAMPION), alias(MODEL, PREVIOUS_CHAMPION)) == ("1", "1", None)
    tags = MlflowClient().get_model_version(MODEL, "1").tags
    assert tags["promoted"] == "true"
    [event] = _history()
    assert (event.seq, event.action, event.from_version, event.to_version) == (
        1,
        "promote",
        None,
        "1",
    )
    assert event.by and event.at.endswith("+00:00") and event.decision_run
    run = MlflowClient().get_run(event.decision_run)
    assert run.data.tags["training_ids.digest"] == tags["training_ids.digest"]


def test_retried_registration_and_promotion_change_nothing_twice(january: object) -> None:
    """A retry after the registry did the work but the answer was lost: no second version,
    no second alias move, and what the first try left undone is finished."""
    client = MlflowClient()
    version = make_version(january)
    mv = client.get_model_version(MODEL, version)
    again = register_challenger.fn(
        str(mv.source),
        MODEL,
        run_id=mv.run_id,
        period="2026-01",
        verdict="helper",
        training_ids_digest=mv.tags["training_ids.digest"],
    )
    assert again == version and len(client.search_model_versions(f"name='{MODEL}'")) == 1
    client.set_model_version_tag(MODEL, version, "promoted", "false")  # first try stopped here
    [event] = _history()
    outcome = promote_challenger.fn(
        MODEL, version, expected_champion=None, decision_run=event.decision_run
    )
    assert outcome.promoted and outcome.reason == "already promoted by this run"
    assert client.get_model_version(MODEL, version).tags["promoted"] == "true"
    assert len(_history()) == 1 and alias(MODEL, CHAMPION) == version


def test_promotion_refuses_when_the_champion_moved(january: object) -> None:
    make_version(january)
    v2 = make_version(january, promote=False)
    outcome = promote_challenger.fn(MODEL, v2, expected_champion=None, decision_run="r2")
    assert outcome.conflict and not outcome.promoted
    assert "is v1 now, not none as when compared" in outcome.reason
    assert alias(MODEL, CHAMPION) == "1" and alias(MODEL, CHALLENGER) == v2
    tags = MlflowClient().get_model_version(MODEL, v2).tags
    assert (tags["verdict"], tags["promoted"]) == ("conflict", "false")
    assert len(_history()) == 1


_RACER = """
import json, sys, time
from pathlib import Path
from mlflow.tracking import MlflowClient
from tasks.registry.promote import promote_challenger
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking

configure_tracking.fn(Settings())
real = MlflowClient.set_registered_model_alias
def slow(self, *args, **kwargs):  # a slow registry: widens the window between read and write
    time.sleep(0.8)
    return real(self, *args, **kwargs)
MlflowClient.set_registered_model_alias = slow
go = Path(sys.argv[2])
(go.parent / ("ready-" + sys.argv[1])).touch()
while not go.exists():
    time.sleep(0.005)
outcome = promote_challenger.fn("telco-churn", sys.argv[1], expected_champion="1",
                                decision_run="run-" + sys.argv[1], reason="race")
print(json.dumps(outcome.model_dump(mode="json")))
"""


def test_two_processes_racing_to_promote_move_the_alias_once(
    january: object, tmp_path: Path
) -> None:
    """Two retrain runs compared against champion v1 and both won: exactly one may move it."""
    from prefect.settings import PREFECT_API_URL

    make_version(january)
    racers = [make_version(january, promote=False) for _ in range(2)]
    go = tmp_path / "go"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, version, str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in racers
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{v}").exists() for v in racers):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.05)
    go.touch()  # both imported and waiting: release them together
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    winners = [o for o in outcomes if o["promoted"]]
    losers = [o for o in outcomes if o["conflict"]]
    assert len(winners) == 1 and len(losers) == 1
    winner = winners[0]["champion_after"]
    loser = next(v for v in racers if v != winner)
    assert alias(MODEL, CHAMPION) == winner and alias(MODEL, PREVIOUS_CHAMPION) == "1"
    assert alias(MODEL, CHALLENGER) == loser
    assert f"is v{winner} now, not v1 as when compared" in losers[0]["reason"]
    history = _history()
    assert len(history) == 2  # the first promotion and exactly one move from the race
    assert (history[1].from_version, history[1].to_version) == ("1", winner)
    assert history[1].decision_run == f"run-{winner}"


def test_a_missing_lock_fails_before_anything_moves(january: object) -> None:
    from prefect.client.orchestration import get_client

    make_version(january)
    v2 = make_version(january, promote=False)
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(promotion_lock_name(MODEL))
    with pytest.raises(PromotionLockMissing, match="does not exist; create it with"):
        ensure_promotion_lock.fn(MODEL, create=False)
    with pytest.raises(Exception, match="must be created before acquiring"):
        promote_challenger.fn(MODEL, v2, expected_champion="1")
    assert alias(MODEL, CHAMPION) == "1" and len(_history()) == 1
    assert MlflowClient().get_model_version(MODEL, v2).tags["verdict"] == "promotion-failed"
    assert ensure_promotion_lock.fn(MODEL, create=True) == promotion_lock_name(MODEL)
    assert ensure_promotion_lock.fn(MODEL, create=False) == promotion_lock_name(MODEL)


def test_a_lock_with_more_than_one_slot_is_refused(state_home: Path) -> None:
    from prefect.client.orchestration import get_client

    name = "odd-model"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(promotion_lock_name(name), limit=2)
    try:
        with pytest.raises(PromotionLockMissing, match="must be active with limit 1"):
            ensure_promotion_lock.fn(name, create=True)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(promotion_lock_name(name))


def test_a_failed_history_write_leaves_the_aliases_as_they_were(
    january: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_version(january)
    make_version(january)  # v2 champion, v1 previous
    v3 = make_version(january, promote=False)

    def broken(self: MlflowClient, *args: object) -> None:
        raise OSError("registry went away")

    monkeypatch.setattr(MlflowClient, "set_registered_model_tag", broken)
    with pytest.raises(OSError, match="registry went away"):
        promote_challenger.fn(MODEL, v3, expected_champion="2")
    monkeypatch.undo()
    assert (alias(MODEL, CHAMPION), alias(MODEL, PREVIOUS_CHAMPION)) == ("2", "1")
    assert len(_history()) == 2


def test_rollback_restores_the_previous_champion_and_records_both_moves(january: object) -> None:
    make_version(january)
    make_version(january)
    assert (alias(MODEL, CHAMPION), alias(MODEL, PREVIOUS_CHAMPION)) == ("2", "1")

    event = rollback_champion.fn(MODEL, expected_champion="2", reason="v2 misbehaves in production")
    assert (event.action, event.from_version, event.to_version) == ("rollback", "2", "1")
    assert (alias(MODEL, CHAMPION), alias(MODEL, PREVIOUS_CHAMPION)) == ("1", "2")
    moves = [(e.action, e.from_version, e.to_version) for e in _history()]
    assert moves == [("promote", None, "1"), ("promote", "1", "2"), ("rollback", "2", "1")]
    assert _history()[-1].reason == "v2 misbehaves in production"

    make_version(january, promote=False)  # v3, never promoted
    named = rollback_champion.fn(MODEL, expected_champion="1", to_version="3")
    assert (named.from_version, named.to_version) == ("1", "3")
    assert alias(MODEL, CHAMPION) == "3" and len(_history()) == 4


def test_rollback_refusals_change_nothing(january: object) -> None:
    make_version(january)
    with pytest.raises(RollbackRefused, match="no previous champion to roll back to"):
        rollback_champion.fn(MODEL, expected_champion="1")
    with pytest.raises(RollbackRefused, match="has no version 9"):
        rollback_champion.fn(MODEL, expected_champion="1", to_version="9")
    with pytest.raises(RollbackRefused, match="already the champion"):
        rollback_champion.fn(MODEL, expected_champion="1", to_version="1")
    # Decided against a champion that is no longer the one: a conflict, nothing moved.
    with pytest.raises(Conflict, match=r"champion of 'telco-churn' is v1 now, not v2 as when"):
        rollback_champion.fn(MODEL, expected_champion="2")
    assert alias(MODEL, CHAMPION) == "1" and len(_history()) == 1
    assert Conflict("x").exit_code == EXIT_CONFLICT == 8


def test_a_deleted_champion_is_named_from_the_history(january: object) -> None:
    make_version(january)
    assert find_missing_champion.fn(MODEL) is None
    MlflowClient().delete_model_version(MODEL, "1")
    assert alias(MODEL, CHAMPION) is None  # MLflow drops the alias silently
    assert "champion v1 (last in the promotion history) was deleted" in (
        find_missing_champion.fn(MODEL) or ""
    )


def test_rollback_and_status_commands(
    january: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("CHURN_RETRAIN_ACTOR", "ops-oncall")
    make_version(january)
    make_version(january)
    assert main(["rollback", "--reason", "bad week", "--json"]) == 0
    event = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (event["from_version"], event["to_version"], event["by"]) == ("2", "1", "ops-oncall")
    assert alias(MODEL, CHAMPION) == "1"

    assert main(["rollback", "--to-version", "7"]) == 2
    assert "has no version 7" in capsys.readouterr().err

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "champion           v1" in text and "previous-champion  v2" in text
    assert "rollback" in text and "ops-oncall" in text
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3  # promote, promote, rollback

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["champion"]["version"] == "1" and len(status["history"]) == 3
    assert registry_status(MODEL) is not None


def test_status_is_fast_to_import_and_never_loads_pycaret(january: object) -> None:
    make_version(january)
    code = (
        "import sys; from cli.main import main; rc = main(['status']); "
        "print('PYCARET' if 'pycaret' in sys.modules else 'NO-PYCARET', rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "champion           v1" in done.stdout
    assert done.stdout.strip().endswith("NO-PYCARET 0")


def test_settle_reports_a_refused_promotion_as_a_conflict() -> None:
    from tasks.decision.verdict import Decision, settle
    from tasks.registry.promote import Promotion

    won = Decision(
        verdict="promote",
        promote=True,
        reason="better",
        metric="roc_auc",
        challenger_score=0.85,
        champion_score=0.83,
        improvement=0.02,
    )
    moved = Promotion(
        promoted=True, conflict=False, champion_before="1", champion_after="3", reason="ok"
    )
    refused = Promotion(
        promoted=False, conflict=True, champion_before="2", champion_after="2", reason="moved"
    )
    done = settle(won, moved, champion_before="1")
    assert (done.verdict, done.promoted, done.reason, done.champion_after) == (
        "promote",
        True,
        "better",
        "3",
    )
    conflict = settle(won, refused, champion_before="1")
    assert (conflict.verdict, conflict.promoted, conflict.champion_after) == (
        "conflict",
        False,
        "2",
    )
    assert conflict.reason == "moved (the comparison said: better)"
    assert conflict.superseded == "promote" and not conflict.promote
    assert conflict.challenger_score == 0.85  # the numbers behind it stay
    kept = won.model_copy(update={"verdict": "tie", "promote": False, "reason": "tie"})
    tie = settle(kept, None, champion_before="1")
    assert (tie.verdict, tie.promoted, tie.reason, tie.champion_after) == ("tie", False, "tie", "1")


def test_an_unreachable_registry_is_an_outage_not_an_unusable_champion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A champion that cannot be fetched because the server is down must not be 'replaced'."""
    import mlflow

    from tasks.registry.aliases import ChampionRef
    from tasks.registry.champion import load_champion

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    tracking, registry_uri = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # nothing listens on the discard port
    mlflow.set_registry_uri("http://127.0.0.1:9")
    try:
        with pytest.raises(Exception, match=r"127\.0\.0\.1|[Cc]onnect"):
            load_champion.fn(ChampionRef(name=MODEL, version="1", run_id=None))
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry_uri)
