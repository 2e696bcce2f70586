"""Issue 30, item 5, through the real score flow: no champion is exit 10 (the registry answered,
a retrain is what is missing), a registry that does not answer stays exit 5, and an output in
a format scores are not written in is refused before anything is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from flows.parameters import ScoreParameters
from flows.score import score
from tasks.data.generate import generate_snapshot
from tasks.data.schema import TARGET
from tasks.errors import (
    EXIT_NO_CHAMPION,
    EXIT_TRACKING,
    NoChampion,
    TrackingUnavailable,
    UsageError,
)
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking
from tests.servers import clean_env, run_cli

pytestmark = pytest.mark.slow

PERIOD = "2026-03"
MODEL = "telco-churn"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A small base to score, as a CSV without the target."""
    path = tmp_path / f"base-{PERIOD}.csv"
    generate_snapshot(PERIOD, rows=300).drop(columns=[TARGET]).to_csv(path, index=False)
    return path


@pytest.mark.usefixtures("prefect_server")
def test_no_champion_in_a_registry_that_answered_is_no_champion(
    state_home: Path, base: Path, tmp_path: Path
) -> None:
    """Before any retrain (no model registered), and with the model registered but never
    promoted (no champion alias): exit 10 saying what to do, nothing written."""
    out = tmp_path / "scores.csv"
    _assert_no_champion(ScoreParameters(data=str(base), period=PERIOD, output=str(out)))
    # The local store the flow answered from gets the model, with no version and no alias.
    configure_tracking.fn(Settings())
    MlflowClient().create_registered_model(MODEL)
    _assert_no_champion(ScoreParameters(data=str(base), period=PERIOD, output=str(out)))
    assert not out.exists()


def _assert_no_champion(params: ScoreParameters) -> None:
    with pytest.raises(
        NoChampion,
        match=rf"^no champion for model '{MODEL}' yet on sqlite:///.*mlflow\.db: run a "
        r"retrain first \(churn-retrain run\) so one is promoted$",
    ) as caught:
        score(params)
    assert caught.value.exit_code == EXIT_NO_CHAMPION


@pytest.mark.usefixtures("prefect_server")
def test_a_registry_that_does_not_answer_for_the_champion_stays_exit_5(
    state_home: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(name: str) -> None:
        raise requests.ConnectionError("[Errno 111] Connection refused")

    monkeypatch.setattr("flows.score.find_champion", refused)
    with pytest.raises(
        TrackingUnavailable,
        match=r"did not answer when asked for the champion .*connection refused",
    ) as caught:
        score(ScoreParameters(data=str(base), period=PERIOD))
    assert caught.value.exit_code == EXIT_TRACKING and not isinstance(caught.value, NoChampion)


@pytest.mark.usefixtures("prefect_server")
def test_an_xlsx_output_is_refused_before_anything_is_loaded(
    state_home: Path, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parameters that skipped the form's check (built without validation) are refused by
    the flow itself, before the data or the registry is touched."""

    def touched(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be loaded or looked up for a refused output")

    monkeypatch.setattr("flows.score.load_snapshot", touched)
    monkeypatch.setattr("flows.score.configure_tracking", touched)
    out = tmp_path / "scores.xlsx"
    params = ScoreParameters.model_construct(data=str(base), period=PERIOD, output=str(out))
    with pytest.raises(UsageError, match=r"extension \.xlsx; scores are written as \.csv"):
        score(params)
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_the_command_exits_10_without_a_traceback(base: Path, tmp_path: Path) -> None:
    """As a user runs it: a fresh process, a local store that answers and has no champion."""
    env = clean_env(CHURN_RETRAIN_HOME=str(tmp_path / "state"))
    done = run_cli("score", "--data", str(base), "--period", PERIOD, cwd=tmp_path, env=env)
    assert done.returncode == EXIT_NO_CHAMPION, done.stderr[-3000:]
    assert f"NoChampion: no champion for model '{MODEL}' yet" in done.stderr
    assert "run a retrain first" in done.stderr and "Traceback" not in done.stderr
