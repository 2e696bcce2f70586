"""Every command with every way of giving MLflow credentials, against a real basic-auth server.

The four ways: `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (MLflow's own variables),
the project's `CHURN_RETRAIN_TRACKING_*` settings, a DagsHub token in `DAGSHUB_USER_TOKEN`, and
a DagsHub token in a Prefect Secret block (`CHURN_RETRAIN_DAGSHUB_TOKEN_BLOCK`).

DagsHub's host cannot run here. Its stand-in is `mlflow server --app-name basic-auth`
(tests/tracking_server.py) serving its API under `/acme/churn.mlflow`, the shape of DagsHub's
`https://dagshub.com/OWNER/REPO.mlflow`; `CHURN_RETRAIN_DAGSHUB_HOST` points the DagsHub settings
at it, so the DagsHub path (the URI built from host, owner and repository; the token as the basic
auth password of the owner) runs for real. Each way has a user of its own whose password exists
nowhere else, and a model of its own, so a command that gets through proves its way was used.

Between commands the MLflow variables a command exported for its connection are dropped: each
command must find the credentials itself, as a fresh process would (one command per way runs as
a fresh process: `churn-retrain validate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cli.main import main
from flows.parameters import (
    RetrainParameters,
    RollbackParameters,
    ScoreParameters,
    ValidateParameters,
)
from flows.retrain import retrain
from flows.rollback import rollback
from flows.score import score
from flows.validate import validate
from tasks.data.generate import generate_snapshot
from tests.registry_helpers import make_version
from tests.servers import clean_env, run_cli
from tests.tracking_server import TrackingServer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

PREFIX = "/acme/churn.mlflow"
OWNER, REPO = "acme", "churn"
FAST: dict[str, Any] = {"data": "generated", "models": ["lr"], "folds": 2, "generated_rows": 1000}
BLOCK = "churn-credentials-dagshub-token"
#: user -> password on the server; DagsHub's user is the repository owner.
USERS = {
    "env-bot": "env-bot-password-51c2",
    "settings-bot": "settings-bot-password-51c2",
    OWNER: "dagshub-token-51c2",
}
MODES = ["mlflow-variables", "project-settings", "dagshub-token", "dagshub-token-block"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    srv = TrackingServer(tmp_path_factory.mktemp("credentials-server"), prefix=PREFIX)
    srv.start()
    for user, password in USERS.items():
        srv.create_user(user, password)
    yield srv
    srv.kill()


def _credentials(mode: str, server: TrackingServer) -> dict[str, str]:
    """The environment of one way of giving credentials (nothing else about tracking)."""
    if mode == "mlflow-variables":
        return {
            "MLFLOW_TRACKING_URI": server.url,
            "MLFLOW_TRACKING_USERNAME": "env-bot",
            "MLFLOW_TRACKING_PASSWORD": USERS["env-bot"],
        }
    if mode == "project-settings":
        return {
            "CHURN_RETRAIN_TRACKING_URI": server.url,
            "CHURN_RETRAIN_TRACKING_USERNAME": "settings-bot",
            "CHURN_RETRAIN_TRACKING_PASSWORD": USERS["settings-bot"],
        }
    dagshub = {
        "CHURN_RETRAIN_DAGSHUB_HOST": server.base,
        "CHURN_RETRAIN_DAGSHUB_OWNER": OWNER,
        "CHURN_RETRAIN_DAGSHUB_REPO": REPO,
    }
    if mode == "dagshub-token":
        return {**dagshub, "DAGSHUB_USER_TOKEN": USERS[OWNER]}
    assert mode == "dagshub-token-block"
    return {**dagshub, "CHURN_RETRAIN_DAGSHUB_TOKEN_BLOCK": BLOCK}


def _forget_connection(credentials: dict[str, str]) -> None:
    """Drop what the last command exported for MLflow, keeping what this way itself sets.

    Popped directly (the `state_home` fixture restores the environment after the test).
    """
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(name, None)
        if name in credentials:
            os.environ[name] = credentials[name]


@pytest.mark.parametrize("mode", MODES)
def test_every_command_works_with_each_way_of_giving_credentials(
    mode: str,
    server: TrackingServer,
    state_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL

    model = f"churn-credentials-{mode}"
    credentials = _credentials(mode, server)
    if mode == "dagshub-token-block":
        Secret(value=USERS[OWNER]).save(BLOCK, overwrite=True)
    for name, value in {
        **credentials,
        "CHURN_RETRAIN_MODEL_NAME": model,
        "CHURN_RETRAIN_EXPERIMENT_NAME": model,
    }.items():
        monkeypatch.setenv(name, value)
    february = tmp_path / "2026-02.csv"
    generate_snapshot("2026-02", seed=1, rows=800).to_csv(february, index=False)

    # run: trains, logs and promotes the first champion through the server.
    record = retrain(RetrainParameters(period="2026-01", **FAST))
    assert record.verdict == "promote-first" and record.champion_version_after == "1"
    assert server.champion(model) == "1"

    # validate: the drift check finds the champion's profile on the server.
    _forget_connection(credentials)
    verdict = validate(ValidateParameters(data=str(february), period="2026-02"))
    assert "champion v1" in verdict.drift, verdict.drift

    # ... and as a fresh process: only this way's variables, nothing exported by a run.
    env = clean_env(
        **credentials,
        CHURN_RETRAIN_HOME=str(state_home),
        CHURN_RETRAIN_MODEL_NAME=model,
        CHURN_RETRAIN_EXPERIMENT_NAME=model,
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
    )
    done = run_cli(
        "validate", "--data", str(february), "--period", "2026-02", cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "champion v1" in done.stdout, done.stdout

    # score: the champion loads from the server's artifact store.
    _forget_connection(credentials)
    output = tmp_path / "scores.csv"
    scored = score(ScoreParameters(data=str(february), period="2026-02", output=str(output)))
    assert scored.rows == 800 and scored.model_version == "1"
    assert len(pd.read_csv(output)) == 800

    # rollback: a second champion (registered quickly, without PyCaret), then back to v1.
    _forget_connection(credentials)
    train = generate_snapshot("2026-01", seed=2, rows=600)
    assert make_version(train, period="2026-02") == "2" and server.champion(model) == "2"
    _forget_connection(credentials)
    event = rollback(RollbackParameters(reason="credentials test"))
    assert (event.from_version, event.to_version) == ("2", "1")
    assert server.champion(model) == "1"

    # status: reads the registry (champion, history) through the same connection.
    _forget_connection(credentials)
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert model in out and "v1" in out, out
    assert not (state_home / "mlflow.db").exists()  # nothing fell back to the local store
