"""The state directory at fault: each a named failure (path, what is wrong, what to do) with
exit status 9, no traceback, the champion untouched; the next command on a mended store works.

Commands run as real processes with their own temporary Prefect server, as a user runs them.
A read-only state directory is a read-only bind mount and a full disk a filled tmpfs, where this
machine lets a test mount them (as root); a truncated `mlflow.db` needs nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.data.generate import generate_snapshot
from tasks.errors import EXIT_OK, EXIT_STATE
from tasks.registry.aliases import CHAMPION
from tests.disks import fill, mount, small_disk
from tests.registry_helpers import MODEL, alias, make_version
from tests.servers import clean_env, run_cli

pytestmark = pytest.mark.usefixtures("prefect_server")

RUN = ("run", "--period", "2026-02", "--data", "generated", "--generated-rows", "1000")
FAST = ("--models", "lr", "--folds", "2")


def _champion_in(home: Path) -> None:
    """v1 promoted in `home` (the caller's CHURN_RETRAIN_HOME)."""
    assert make_version(generate_snapshot("2026-01", seed=1, rows=600)) == "1"
    assert alias(MODEL, CHAMPION) == "1" and (home / "mlflow.db").exists()


def _named(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == EXIT_STATE, done.stderr[-3000:]
    assert "StateUnusable:" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
    for word in words:
        assert word in done.stderr, done.stderr[-2000:]


def test_a_truncated_mlflow_database_is_named(state_home: Path, tmp_path: Path) -> None:
    _champion_in(state_home)
    database = state_home / "mlflow.db"
    intact = database.read_bytes()
    database.write_bytes(intact[: len(intact) // 2])
    env = clean_env(CHURN_RETRAIN_HOME=str(state_home))
    _named(run_cli("status", env=env, cwd=tmp_path), "MLflow database is corrupt", "backup")
    _named(run_cli(*RUN, *FAST, env=env, cwd=tmp_path), "MLflow database is corrupt")
    database.write_bytes(intact)  # restored from the backup: the champion is still v1
    done = run_cli("status", "--json", env=env, cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert '"champion"' in done.stdout and "Traceback" not in done.stderr


def test_a_locked_mlflow_database_is_named(state_home: Path, tmp_path: Path) -> None:
    """Another process holds an exclusive lock on mlflow.db (a stuck writer) for the whole run."""
    import sys

    _champion_in(state_home)
    hold = (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(state_home / "mlflow.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = clean_env(CHURN_RETRAIN_HOME=str(state_home))
        _named(run_cli("status", env=env, cwd=tmp_path, timeout=120), "stayed locked", "fuser")
    finally:
        holder.kill()
        holder.wait()
    assert alias(MODEL, CHAMPION) == "1"


@pytest.fixture
def read_only(state_home: Path) -> Iterator[Path]:
    """`state_home` with a champion, then mounted read-only over itself."""
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    # A real run's champion: its scores give `status` a reign to plot.
    fast = {"data": "generated", "models": ["lr"], "folds": 2, "generated_rows": 1000}
    assert retrain(RetrainParameters(period="2026-01", **fast)).promoted
    (state_home / "prefect").mkdir()  # as any command-line run leaves it
    mount("--bind", str(state_home), str(state_home))
    try:
        mount("-o", "remount,ro,bind", str(state_home))
        yield state_home
    finally:
        subprocess.run(["umount", str(state_home)], check=False)


def test_a_read_only_state_directory_is_named_and_not_retried(
    read_only: Path, tmp_path: Path
) -> None:
    env = clean_env(CHURN_RETRAIN_HOME=str(read_only))
    # `status` only reads: it answers, without its picture.
    shown = run_cli("status", env=env, cwd=tmp_path, timeout=120)
    assert shown.returncode == EXIT_OK, shown.stderr[-3000:]
    assert "v1" in shown.stdout and "not written" in shown.stdout, shown.stdout
    done = run_cli(*RUN, *FAST, env=env, cwd=tmp_path, timeout=120)
    _named(done, "the file system is read-only", str(read_only))
    assert "Retrying" not in done.stderr  # a read-only disk stays so: no retry
    subprocess.run(["umount", str(read_only)], check=True)
    assert alias(MODEL, CHAMPION) == "1"  # nothing changed


def test_a_full_disk_is_named_and_the_next_run_completes(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        env = clean_env(CHURN_RETRAIN_HOME=str(disk / "state"))
        first = run_cli(*RUN[:2], "2026-01", *RUN[3:], *FAST, env=env, cwd=tmp_path)
        assert first.returncode == EXIT_OK, first.stderr[-2000:]
        filler = fill(disk)
        _named(run_cli(*RUN, *FAST, env=env, cwd=tmp_path), "no space left")
        filler.unlink()
        done = run_cli(*RUN, *FAST, "--json", env=env, cwd=tmp_path)
        assert done.returncode == EXIT_OK, done.stderr[-2000:]
        assert '"verdict"' in done.stdout.splitlines()[-1]


def test_a_state_directory_with_spaces_and_quotes_works(tmp_path: Path) -> None:
    home = tmp_path / "state with spaces 'and quotes' \"too\""
    env = clean_env(CHURN_RETRAIN_HOME=str(home))
    first = run_cli(*RUN[:2], "2026-01", *RUN[3:], *FAST, env=env, cwd=tmp_path)
    assert first.returncode == EXIT_OK, first.stderr[-2000:]
    done = run_cli("status", env=env, cwd=tmp_path)
    assert done.returncode == EXIT_OK and "v1" in done.stdout, done.stderr[-2000:]
    assert (home / "mlflow.db").exists() and (home / "mlartifacts").is_dir()
