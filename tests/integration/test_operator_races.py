"""Operator commands under the promotion lock and compare-and-set, as promotions are.

Two rollbacks at once, a rollback racing a retrain, a prune racing a promotion: each ends with
one action applied and the other named (`Conflict`, exit 8, no traceback), never both applied.
The commands run as real processes on one state directory and the session's Prefect server
(whose global concurrency limit is the promotion lock).
"""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tasks.data.generate import generate_snapshot
from tasks.errors import EXIT_CONFLICT, EXIT_OK, Conflict
from tasks.registry.aliases import CHAMPION
from tasks.registry.history import read_history
from tasks.registry.prune import delete_unpromoted_versions, plan_prune
from tests.registry_helpers import MODEL, alias, make_version
from tests.servers import clean_env

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return clean_env(CHURN_RETRAIN_HOME=str(home), PREFECT_API_URL=str(PREFECT_API_URL.value()))


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _moves() -> list[tuple[str, str | None, str]]:
    return [(e.action, e.from_version, e.to_version) for e in read_history(MlflowClient(), MODEL)]


def test_two_rollbacks_at_once_apply_once(state_home: Path) -> None:
    train = generate_snapshot("2026-01", seed=1, rows=600)
    make_version(train)
    make_version(train)  # v2 champion, v1 previous: both operators want v2 gone
    env = _env(state_home)
    first = _start("rollback", "--reason", "A: v2 misbehaves", env=env)
    second = _start("rollback", "--reason", "B: v2 misbehaves", env=env)
    outcomes = sorted([_finish(first), _finish(second)])

    (ok, _, _), (refused, _, err) = outcomes
    assert (ok, refused) == (EXIT_OK, EXIT_CONFLICT), outcomes
    assert "Conflict:" in err and "nothing was moved" in err and "Traceback" not in err
    assert alias(MODEL, CHAMPION) == "1"  # v2 stays gone
    assert [m for m in _moves() if m[0] == "rollback"] == [("rollback", "2", "1")]


def test_a_rollback_racing_a_retrain_ends_with_one_move(state_home: Path) -> None:
    train = generate_snapshot("2026-01", seed=1, rows=600)
    make_version(train)  # v1: a sound model
    noise = np.random.default_rng(0).integers(0, 2, len(train))
    make_version(train, target=noise)  # v2: fitted to noise, below the floor: a retrain replaces it
    env = _env(state_home)
    retrain = _start(
        "run", "--period", "2026-02", "--data", "generated", "--generated-rows", "1000",
        "--models", "lr", "--folds", "2", "--json", env=env,
    )  # fmt: skip
    rollback = _start("rollback", "--reason", "v2 is noise", env=env)
    rolled, _, rollback_err = _finish(rollback)
    ran, retrain_out, retrain_err = _finish(retrain)
    assert ran == EXIT_OK, retrain_err[-2000:]
    record = json.loads(retrain_out.strip().splitlines()[-1])

    moves = _moves()
    rollbacks = [m for m in moves if m[0] == "rollback"]
    # One chain: every move starts from the champion the move before it left.
    assert all(later[1] == earlier[2] for earlier, later in pairwise(moves)), moves
    decided_against = record["champion"]["version"]
    if rolled == EXIT_OK:  # the rollback applied ...
        assert rollbacks == [("rollback", "2", "1")]
        if decided_against == "2":  # ... so a promotion decided against v2 is refused
            assert record["verdict"] == "conflict" and not record["promoted"], record["reason"]
    else:  # the retrain's promotion first: the rollback, asked for before it, is named
        assert rolled == EXIT_CONFLICT and "Conflict:" in rollback_err, rollback_err[-2000:]
        assert record["promoted"] and decided_against == "2" and not rollbacks
    assert alias(MODEL, CHAMPION) == moves[-1][2]


def test_a_prune_planned_before_a_promotion_deletes_nothing(state_home: Path) -> None:
    train = generate_snapshot("2026-01", seed=1, rows=600)
    make_version(train)
    make_version(train, promote=False, period="2026-02")  # v2, never promoted
    plan = plan_prune.fn(MODEL, older_than_months=1, now=_months_later(13))
    assert [d.version for d in plan.deleted] == ["2"] and plan.champion == "1"
    make_version(train, period="2026-03")  # v3 promoted between the plan and the deletes

    with pytest.raises(Conflict, match=r"is v3 now, not v1 as when this prune was planned"):
        delete_unpromoted_versions.fn(plan)
    versions = {str(v.version) for v in MlflowClient().search_model_versions(f"name='{MODEL}'")}
    assert versions == {"1", "2", "3"}  # nothing deleted


def _months_later(months: int):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=31 * months)
