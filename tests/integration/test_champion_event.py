"""A move of the champion is an event, and the event re-scores the base: on a real Prefect
server with the deployments of prefect.yaml (`make deploy`), the automations
(`make automation`) and a process worker (`make worker`), the moves come from a command-line
run, a deployment run, a rollback deployment and a command-line rollback; each is read back
from the events API and starts `score/monthly-base`, whose scores are the new champion's; a
triggered scoring that fails alerts a receiver on 127.0.0.1."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tasks.data.configured import SCORE_BASE_VARIABLE, SCORE_OUTPUT_VARIABLE
from tasks.registry.events import CHAMPION_MOVED
from tests.alert_receivers import AlertReceiver, receiver
from tests.servers import BIN, clean_env, free_port, run_cli, start, stop, wait_for, wait_http

ROOT = Path(__file__).resolve().parents[2]
MODEL = "telco-churn"
BLOCK = "custom-webhook/churn-score-test"
SMALL = ["--data", "generated", "--generated-rows", "1500", "--folds", "2"]

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    env: dict[str, str]
    alerts: AlertReceiver
    home: Path
    scores: Path
    timings: dict[str, float] = field(default_factory=dict)

    def api(self) -> Any:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings({PREFECT_API_URL: self.env["PREFECT_API_URL"]})

    def make(self, *args: str) -> None:
        done = subprocess.run(
            ["make", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"make {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server, the deployments, the automations and one worker for the whole module; the
    Variables point the scoring at a 600-customer base and at a scores folder."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.variables import Variable

    from tasks.data.generate import generate_snapshot

    tmp = tmp_path_factory.mktemp("champion-event")
    port = free_port()
    env = clean_env(
        PREFECT_HOME=str(tmp / "prefect"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_WORKER_QUERY_SECONDS="1",
        CHURN_RETRAIN_HOME=str(tmp / "state"),
    )
    (tmp / "prefect").mkdir()
    begun = time.monotonic()
    server = start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        log=tmp / "server.log",
    )
    worker = None
    with receiver() as alerts:
        stack = Stack(env, alerts, tmp / "state", tmp / "scores")
        try:
            wait_http(
                f"{env['PREFECT_API_URL']}/health",
                timeout=90,
                process=server,
                log=tmp / "server.log",
            )
            stack.make("deploy")
            with stack.api():
                CustomWebhookNotificationBlock(
                    name="churn-score", url=alerts.url, json_data={"text": "{{subject}}\n{{body}}"}
                ).save(BLOCK.partition("/")[2], overwrite=True)
                base = tmp / "base.csv"
                generate_snapshot("2026-01", rows=600, seed=3).drop(columns=["Churn"]).to_csv(
                    base, index=False
                )
                Variable.set(SCORE_BASE_VARIABLE, str(base), overwrite=True)
                Variable.set(
                    SCORE_OUTPUT_VARIABLE,
                    str(stack.scores / "{period}-v{version}.csv"),
                    overwrite=True,
                )
            stack.make("automation", f"BLOCK={BLOCK}")
            worker = start(["make", "worker"], env=env, log=tmp / "worker.log", cwd=ROOT)
            stack.timings["server, deploy, automation, worker"] = time.monotonic() - begun
            yield stack
        finally:
            if worker is not None:
                stop(worker)
            stop(server)
            print("champion-event timings (s):", {k: round(v, 1) for k, v in stack.timings.items()})


def _moves(stack: Stack) -> list[Any]:
    """The champion-moved events the server stored, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    wanted = EventFilter(
        event=EventNameFilter(name=[CHAMPION_MOVED]),
        resource=EventResourceFilter(id=[f"churn-retrain.model.{MODEL}"]),
    )
    with stack.api(), get_client(sync_client=True) as client:
        return sorted(client.read_events(filter=wanted, limit=50).events, key=lambda e: e.occurred)


def _scorings(stack: Stack) -> list[Any]:
    """The runs of `score/monthly-base`, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with stack.api(), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["monthly-base"]))
        )
    return sorted(runs, key=lambda r: r.created)


def _next_move(stack: Stack, seen: int, what: str) -> Any:
    """The event of the move after the `seen` ones, waited for (the server stores in batches)."""
    moves = wait_for(what, lambda: _moves(stack)[seen:] or None, seconds=60)
    assert len(moves) == 1, [m.payload for m in moves]  # one move, one event
    return moves[0]


def _next_scoring(stack: Stack, seen: int, what: str) -> Any:
    """The scoring run the move after `seen` ones triggered, once it ended."""

    def ended() -> Any:
        runs = _scorings(stack)[seen:]
        return runs[0] if runs and runs[0].state is not None and runs[0].state.is_final() else None

    run = wait_for(what, ended, seconds=240)
    assert len(_scorings(stack)) == seen + 1
    return run


def _scores_of(stack: Stack, version: str) -> pd.DataFrame:
    (path,) = stack.scores.glob(f"*-v{version}.csv")
    return pd.read_csv(path, dtype={"model_version": str})


def test_a_promotion_is_an_event_and_rescores_the_base_with_the_new_champion(
    stack: Stack,
) -> None:
    since = time.monotonic()
    # 1. A command-line run (this process's own event, sent before it exits): the first
    # champion, a constant-score model admitted by a zero floor.
    done = run_cli(
        "run",
        "--period",
        "2026-01",
        *SMALL,
        "--models",
        "dummy",
        "--rule.floor",
        "0",
        env=stack.env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first = _next_move(stack, 0, "the event of the first promotion")
    assert first.payload["from_version"] is None and first.payload["to_version"] == "1"
    assert first.payload["period"] == "2026-01" and first.payload["verdict"] == "promote-first"
    assert first.payload["action"] == "promote" and first.payload["model"] == MODEL
    scoring = _next_scoring(stack, 0, "the scoring the first promotion triggered")
    assert scoring.state.is_completed(), scoring.state
    assert scoring.parameters["params"]["model"] == {"name": MODEL}
    assert set(_scores_of(stack, "1")["model_version"]) == {"1"}
    stack.timings["CLI promotion to its scores"] = time.monotonic() - since

    # 2. A run of the manual deployment on the worker: lr replaces the below-floor champion.
    since = time.monotonic()
    from prefect.deployments import run_deployment

    with stack.api():
        run = run_deployment(
            "retrain/manual",
            parameters={
                "params": {
                    "period": "2026-02",
                    "data": "generated",
                    "models": ["lr"],
                    "folds": 2,
                    "generated_rows": 1500,
                }
            },
            timeout=600,
        )
    assert run.state.is_completed(), run.state
    second = _next_move(stack, 1, "the event of the second promotion")
    payload = second.payload
    assert (payload["from_version"], payload["to_version"]) == ("1", "2")
    assert payload["verdict"] == "replace-below-floor" and payload["flow_run"] == str(run.id)
    assert {r.role: r.id for r in second.related}["flow-run"] == f"prefect.flow-run.{run.id}"
    print("the event as read back:", second.model_dump_json(indent=2))
    scoring = _next_scoring(stack, 1, "the scoring the second promotion triggered")
    assert scoring.state.is_completed(), scoring.state
    scores = _scores_of(stack, "2")
    assert set(scores["model_version"]) == {"2"} and len(scores) == 600
    stack.timings["deployment promotion to its scores"] = time.monotonic() - since


def test_a_rollback_is_an_event_and_rescores_with_the_restored_champion(stack: Stack) -> None:
    from prefect.deployments import run_deployment

    since = time.monotonic()
    (old,) = stack.scores.glob("*-v1.csv")
    old.unlink()  # the scores of v1 must be written again, by the scoring this move starts
    with stack.api():
        run = run_deployment(
            "rollback/rollback", parameters={"params": {"reason": "lr scores drift"}}, timeout=300
        )
    assert run.state.is_completed(), run.state
    back = _next_move(stack, 2, "the event of the rollback")
    assert (back.payload["from_version"], back.payload["to_version"]) == ("2", "1")
    assert back.payload["action"] == "rollback" and back.payload["verdict"] == "rollback"
    assert back.payload["reason"] == "lr scores drift" and back.payload["period"] is None
    scoring = _next_scoring(stack, 2, "the scoring the rollback triggered")
    assert scoring.state.is_completed(), scoring.state
    assert set(_scores_of(stack, "1")["model_version"]) == {"1"}
    stack.timings["rollback to its scores"] = time.monotonic() - since


def test_a_triggered_scoring_that_fails_alerts(stack: Stack) -> None:
    """The base has gone missing; a command-line rollback (v1 -> v2) starts a scoring that
    fails, and the automation of `make automation` tells the receiver."""
    from prefect.variables import Variable

    since = time.monotonic()
    with stack.api():
        Variable.set(SCORE_BASE_VARIABLE, str(stack.home / "no-such-base.csv"), overwrite=True)
    stack.alerts.clear()
    reason = "see https://etl:s3cr3t@lake.example.org/base.csv?sig=abc"
    done = run_cli("rollback", "--reason", reason, env=stack.env)
    assert done.returncode == 0, done.stderr[-3000:]
    moved = _next_move(stack, 3, "the event of the command-line rollback")
    assert (moved.payload["from_version"], moved.payload["to_version"]) == ("1", "2")
    assert "s3cr3t" not in moved.model_dump_json() and "sig=abc" not in moved.model_dump_json()
    scoring = _next_scoring(stack, 3, "the failing scoring")
    assert scoring.state.is_failed(), scoring.state
    alert = wait_for(
        "the automation's alert",
        lambda: [t for t in stack.alerts.texts() if str(scoring.id) in t] or None,
        seconds=60,
    )
    assert "scoring run" in alert[0] and "Failed" in alert[0]
    stack.timings["failing scoring to its alert"] = time.monotonic() - since
