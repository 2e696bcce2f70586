"""The kill matrix: a CLI run killed (SIGKILL, SIGTERM) at each stage leaves nothing behind.

Each case copies one state directory that holds a champion (v1, one history event), starts
`churn-retrain run` there with one task paused (tests/killing.py's launcher wraps the task's
function: it writes a marker file, then sleeps), kills the process once the marker appears, and
checks: no process of the run is left (its Prefect server included), the next run completes,
says it marked the interrupted MLflow run FAILED (and, after SIGKILL, the flow run Crashed),
the champion and the history are those of before, and a version the killed run registered is
not the champion. Also: two first-ever runs at once on one fresh state directory both finish.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tasks.runtime.owner import Owner
from tasks.runtime.shutdown import TERM_GRACE_SECONDS
from tests.killing import (
    STAGES,
    champion,
    history,
    launcher_args,
    mlflow_client,
    no_process_left,
    versions,
)
from tests.servers import clean_env, run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and flock")

RUN_ARGS = ["--data", "generated", "--generated-rows", "500", "--models", "lr", "--folds", "2"]
#: A tie promotes under this rule, so the killed run reaches `promote-challenger`.
KILLED_RUN = ["run", "--period", "2026-02", *RUN_ARGS, "--rule.method", "point"]
KILLED_RUN += ["--rule.min-improvement", "0"]


def _env(home: Path) -> dict[str, str]:
    # PREFECT_HOME set ahead: the launcher imports Prefect before the CLI could set it.
    return clean_env(CHURN_RETRAIN_HOME=str(home), PREFECT_HOME=str(home / "prefect"))


def _flow_runs_not_final(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "prefect" / "prefect.db") as db:
        rows = db.execute(
            "SELECT name, state_type FROM flow_run WHERE state_type IN ('RUNNING', 'PENDING')"
        ).fetchall()
    return [(str(n), str(s)) for n, s in rows]


@pytest.fixture(scope="module")
def with_champion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state directory after one run: champion v1, one history event."""
    home = tmp_path_factory.mktemp("kill") / "base"
    done = run_cli("run", "--period", "2026-01", *RUN_ARGS, env=_env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    yield home


#: The cases `make test` runs (~40 s each): a signal before the MLflow run exists, during
#: training, and with a version registered. All 12 (~8 min): `make test-kill-matrix`.
DEFAULT_CASES = {("load", "SIGKILL"), ("train", "SIGTERM"), ("register", "SIGKILL")}
WHOLE_MATRIX = os.environ.get("CHURN_RETRAIN_KILL_MATRIX") == "all"
CASES = [
    pytest.param(stage, sig, id=f"{stage}-{sig.name}")
    for stage in STAGES
    for sig in (signal.SIGKILL, signal.SIGTERM)
    if WHOLE_MATRIX or (stage, sig.name) in DEFAULT_CASES
]


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "sig"), CASES)
def test_a_run_killed_at_a_stage_leaves_nothing_behind(
    stage: str,
    sig: signal.Signals,
    with_champion: Path,
    tmp_path: Path,
) -> None:
    home = tmp_path / "state"
    # Same path inside: the experiment's artifact location is absolute (the copy shares it).
    shutil.copytree(with_champion, home)
    champion_before, history_before = champion(home), history(home)
    versions_before = versions(home)
    marker = tmp_path / "paused"
    started = time.monotonic()
    killed = subprocess.Popen(
        [sys.executable, *launcher_args(stage, marker, "cli.main", *KILLED_RUN)],
        env=_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    try:
        while not marker.exists():
            assert killed.poll() is None, killed.communicate()[1][-3000:]
            assert time.monotonic() - started < 240, f"{stage} never reached"
            time.sleep(0.1)
        killed.send_signal(sig)
        signalled = time.monotonic()
        _, err = killed.communicate(timeout=120)
        lived = time.monotonic() - signalled
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    if sig == signal.SIGTERM:
        assert killed.returncode == 128 + sig, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        # Bounded even while training holds a worker thread: the grace, then its own bookkeeping.
        assert lived < TERM_GRACE_SECONDS + 30, f"exited {lived:.1f} s after SIGTERM"
        assert _flow_runs_not_final(home) == []  # it marked its own flow run, nobody else did
    no_process_left(home)

    client = mlflow_client(home)
    experiment = client.get_experiment_by_name("churn-retrain")
    assert experiment is not None
    runs_of = [experiment.experiment_id]
    interrupted = [r for r in client.search_runs(runs_of) if r.info.run_name == "retrain-2026-02"]
    opened = stage not in ("load", "validate")  # the MLflow run opens after the gate
    assert len(interrupted) == int(opened)
    if opened and sig == signal.SIGTERM:  # it marked its own run
        assert interrupted[0].info.status == "KILLED"
    print(f"killed run: {[(r.info.run_id, r.info.status) for r in interrupted]}")
    killed_versions = versions(home) - versions_before
    assert champion(home) == champion_before and history(home) == history_before
    assert bool(killed_versions) == (stage in ("register", "promote"))

    after = run_cli("run", "--period", "2026-03", *RUN_ARGS, env=_env(home))
    took = time.monotonic() - started
    assert after.returncode == 0, after.stderr[-3000:]
    if opened and sig == signal.SIGKILL:
        run_id = interrupted[0].info.run_id
        assert f"MLflow run {run_id} (retrain-2026-02) was left RUNNING" in after.stderr
        assert client.get_run(run_id).info.status == "FAILED"
    if sig == signal.SIGKILL:
        assert "marked it Crashed" in after.stderr, after.stderr[-3000:]
    assert _flow_runs_not_final(home) == []
    assert [
        r.info.run_id for r in client.search_runs(runs_of, "attributes.status = 'RUNNING'")
    ] == []
    champion_after = champion(home)
    assert champion_after not in killed_versions  # what the killed run registered never won
    history_after = history(home)
    assert {k: history_after[k] for k in history_before} == history_before
    print(f"{stage} {sig.name}: {took:.1f} s, exited {lived:.1f} s after the signal")


@pytest.mark.slow
def test_two_first_runs_at_once_on_a_fresh_state_directory_both_finish(tmp_path: Path) -> None:
    """They used to race on creating the MLflow and Prefect SQLite databases (issue 13)."""
    home = tmp_path / "state"
    env = clean_env(CHURN_RETRAIN_HOME=str(home))
    argv = [sys.executable, "-m", "cli.main", "run", "--period", "2026-01", *RUN_ARGS]
    both = [
        subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in both]
    for process, err in zip(both, errors, strict=True):
        assert process.returncode == 0, err[-3000:]
        assert "duplicate column" not in err
    assert champion(home) is not None


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_an_owner_is_gone_only_when_this_host_can_tell() -> None:
    me = Owner.current()
    assert Owner.parse(me.text()) == me and not me.is_gone()
    assert Owner(me.host, me.boot, _dead_pid(), "1").is_gone()  # no such process
    assert Owner(me.host, me.boot, me.pid, "1").is_gone()  # the pid was reused
    assert Owner(me.host, "another-boot", me.pid, me.started).is_gone()  # rebooted since
    assert not Owner("elsewhere", me.boot, _dead_pid(), "1").is_gone()  # not ours to judge
    assert Owner.parse("no owner") is None


def test_runs_left_running_by_a_gone_process_are_marked_failed(
    state_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tasks.settings import Settings
    from tasks.tracking.runs import INTERRUPTED_TAG, OWNER_TAG, configure_tracking

    tracking = configure_tracking.fn(Settings())
    client = MlflowClient()
    me = Owner.current()
    dead = Owner(me.host, me.boot, _dead_pid(), "1")
    gone = client.create_run(tracking.experiment_id, tags={OWNER_TAG: dead.text()})
    alive = client.create_run(tracking.experiment_id, tags={OWNER_TAG: me.text()})
    untagged = client.create_run(tracking.experiment_id)
    configure_tracking.fn(Settings())  # any command's connection looks
    assert client.get_run(gone.info.run_id).info.status == "FAILED"
    assert INTERRUPTED_TAG in client.get_run(gone.info.run_id).data.tags
    for run in (alive, untagged):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
    err = capsys.readouterr().err
    assert f"MLflow run {gone.info.run_id}" in err and "marked it FAILED" in err
