"""Tracking on a store without a server (a `sqlite:///` URI elsewhere, a path, `file://`): the
artifacts live under the state directory whatever the working directory was, a month run from a
directory deleted since leaves the next month a champion that loads, and the summary links no
`sqlite:///…/#/` address."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tasks.data.generate import generate_snapshot
from tasks.report.summary import where_to_look
from tasks.settings import Settings
from tasks.target import ModelTarget
from tasks.tracking.runs import configure_tracking
from tests.servers import clean_env, run_cli

FAST = ["--data", "generated", "--generated-rows", "1000", "--models", "lr", "--folds", "2"]
#: A sqlite URI shown as a web address: `sqlite:///…/#/experiments/…`.
SQLITE_LINK = re.compile(r"sqlite:/+\S*#/")


@dataclass
class Months:
    """Two months retrained on a SQLite store outside the state directory, each from its own
    empty working directory, each directory deleted after its month."""

    root: Path
    home: Path
    store: Path
    env: dict[str, str]
    first: subprocess.CompletedProcess[str]
    first_cwd_left: list[str]
    second: subprocess.CompletedProcess[str]
    second_cwd_left: list[str]

    def empty_cwd(self, name: str) -> Path:
        cwd = self.root / name
        cwd.mkdir()
        return cwd


def _left_in(cwd: Path) -> list[str]:
    return sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Months]:
    root = tmp_path_factory.mktemp("sqlite-store")
    home, store = root / "state", root / "elsewhere" / "mlflow.db"
    env = clean_env(CHURN_RETRAIN_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{store}")
    first_cwd = root / "first-cwd"
    first_cwd.mkdir()
    first = run_cli("run", "--period", "2026-01", "--json", *FAST, cwd=first_cwd, env=env)
    first_left = _left_in(first_cwd)
    shutil.rmtree(first_cwd)  # a temporary directory, gone by next month
    second_cwd = root / "second-cwd"
    second_cwd.mkdir()
    second = run_cli("run", "--period", "2026-02", *FAST, cwd=second_cwd, env=env)  # the summary
    second_left = _left_in(second_cwd)
    shutil.rmtree(second_cwd)  # whichever month's model is champion, its cwd is gone too
    yield Months(root, home, store, env, first, first_left, second, second_left)


def test_a_month_run_from_a_deleted_directory_leaves_a_champion_that_loads(
    months: Months,
) -> None:
    assert months.first.returncode == 0, months.first.stderr[-3000:]
    assert json.loads(months.first.stdout)["verdict"] == "promote-first"
    assert months.first_cwd_left == []  # no mlruns, mlartifacts, logs.log: nothing
    # The model and the run's files are under the state directory, not beside the database.
    assert list((months.home / "mlartifacts").rglob("MLmodel"))
    assert {p.name for p in months.store.parent.iterdir()} == {"mlflow.db", "mlflow.db.lock"}

    assert months.second.returncode == 0, months.second.stderr[-3000:]
    assert months.second_cwd_left == []
    headline = months.second.stdout.splitlines()[0]
    assert headline.startswith("churn-retrain 2026-02: ")
    assert "REPLACE-UNUSABLE-CHAMPION" not in headline, months.second.stdout
    # The champion of January was loaded and scored on February's holdout.
    assert "  champion     v1: holdout roc_auc" in months.second.stdout


def test_the_summary_on_a_sqlite_store_links_no_sqlite_address(months: Months) -> None:
    assert months.second.returncode == 0, months.second.stderr[-3000:]
    shown = months.second.stdout + months.second.stderr
    assert not SQLITE_LINK.search(shown), shown
    look_at = next(line for line in shown.splitlines() if line.startswith("  look at"))
    # The local UI's address, and how to open this store in it (`make mlflow-ui` opens another).
    assert "http://127.0.0.1:5000/#/experiments/" in look_at
    assert f"mlflow ui --backend-store-uri sqlite:///{months.store}" in look_at
    assert "make mlflow-ui" not in look_at


@pytest.mark.parametrize("command", ["validate", "score", "status"])
def test_other_commands_leave_the_working_directory_empty(months: Months, command: str) -> None:
    assert months.first.returncode == 0, months.first.stderr[-3000:]
    data = months.root / "data" / f"{command}.csv"
    data.parent.mkdir(exist_ok=True)
    generate_snapshot("2026-03", rows=400).to_csv(data, index=False)
    args = {
        "validate": ["validate", "--data", str(data), "--period", "2026-03"],
        "score": ["score", "--data", str(data), "--period", "2026-03"],
        "status": ["status"],
    }[command]
    cwd = months.empty_cwd(f"{command}-cwd")
    done = run_cli(*args, cwd=cwd, env=months.env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _left_in(cwd) == []
    assert not SQLITE_LINK.search(done.stdout + done.stderr)
    if command == "score":  # the champion's model loads from the state directory
        assert re.search(r"scored 400 customers with version \d", done.stdout), done.stdout
    if command == "status":
        assert re.search(r"champion\s+v\d", done.stdout), done.stdout


# --- in this process: where experiments are created, and a location that is gone ---


@pytest.mark.parametrize(
    "uri",
    ["sqlite:///{tmp}/elsewhere/mlflow.db", "{tmp}/file-store", "file://{tmp}/file-store"],
    ids=["sqlite", "path", "file"],
)
def test_a_store_without_server_creates_experiments_under_the_state_directory(
    uri: str,
    state_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores unless
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(tmp=tmp_path))
    settings = Settings()
    assert not settings.is_local and not settings.has_tracking_server
    tracking = configure_tracking.fn(settings, ModelTarget(experiment="stores"))
    location = MlflowClient().get_experiment(tracking.experiment_id).artifact_location
    assert location == settings.artifact_root.as_uri()
    assert location.startswith(state_home.as_uri())
    assert tracking.ui_url == "http://127.0.0.1:5000"  # not the store's URI


@pytest.mark.usefixtures("state_home")  # no tracking URI left in the environment by another test
def test_settings_tell_a_server_from_a_store() -> None:
    local = Settings(_env_file=None, home=Path("/state"))  # type: ignore[call-arg]
    assert local.is_local and not local.has_tracking_server
    assert local.ui_url == "http://127.0.0.1:5000"
    for uri in ("sqlite:////db/mlflow.db", "postgresql+psycopg://u:p@db/mlflow", "/runs"):
        other = Settings(_env_file=None, home=Path("/state"), tracking_uri=uri)  # type: ignore[call-arg]
        assert not other.is_local and not other.has_tracking_server, uri
        assert other.ui_url == "http://127.0.0.1:5000", uri
    server = Settings(_env_file=None, tracking_uri="https://mlflow.example.org")  # type: ignore[call-arg]
    assert server.has_tracking_server and server.ui_url == "https://mlflow.example.org"
    dagshub = Settings(_env_file=None, dagshub_owner="o", dagshub_repo="r")  # type: ignore[call-arg]
    assert dagshub.has_tracking_server and dagshub.ui_url == "https://dagshub.com/o/r.mlflow"


def test_an_experiment_whose_artifact_directory_is_gone_is_named_in_a_warning(
    state_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An experiment made before the fix kept its artifacts in the cwd of its first run."""
    uri = f"sqlite:///{tmp_path}/elsewhere/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    gone = tmp_path / "deleted-cwd" / "mlruns" / "1"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("old-experiment", artifact_location=gone.as_uri())
    run = client.create_run(experiment_id)
    (tmp_path / "decision.json").write_text("{}")
    client.log_artifact(run.info.run_id, str(tmp_path / "decision.json"))
    client.set_terminated(run.info.run_id, "FINISHED")
    capsys.readouterr()
    configure_tracking.fn(Settings(), ModelTarget(experiment="old-experiment"))
    assert "no longer exists" not in capsys.readouterr().err  # the directory is there
    shutil.rmtree(tmp_path / "deleted-cwd")

    configure_tracking.fn(Settings(), ModelTarget(experiment="old-experiment"))
    err = capsys.readouterr().err
    assert "'old-experiment'" in err and str(gone) in err and "no longer exists" in err
    assert "--model.experiment" in err  # what to do about it


def test_where_to_look_names_the_command_serving_the_runs_store() -> None:
    default = "sqlite:////state/mlflow.db"
    assert where_to_look(default, default) == "decision.json; local store: `make mlflow-ui`"
    elsewhere = where_to_look("sqlite:////data/my store.db", default)
    assert (
        elsewhere
        == "decision.json; this store: `mlflow ui --backend-store-uri 'sqlite:////data/my store.db'`"
    )
    database = where_to_look("postgresql+psycopg://churn:s3cret@db/mlflow", default)
    assert "postgresql+psycopg://db/mlflow" in database and "s3cret" not in database
    server = where_to_look("https://mlflow.example.org", default)  # as before: a server's UI
    assert server == "decision.json; local store: `make mlflow-ui`"
