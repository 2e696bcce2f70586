"""`churn-retrain`: exit statuses, JSON output, the human summary, and a clean working directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import _parser, _run_parameters, main, summary
from tasks.data.generate import generate_snapshot
from tasks.decision.record import DecisionRecord, ModelScores
from tasks.decision.rule import DecisionRule
from tests.servers import clean_env, run_cli

FAST_ARGS = ["--rows", "1500", "--models", "lr", "--folds", "3"]


def test_cold_run_in_a_fresh_process_prints_one_json_record(tmp_path: Path) -> None:
    """The main job as a user runs it: no Prefect server, no MLflow server, fresh state."""
    home, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(CHURN_RETRAIN_HOME=str(home))
    done = run_cli("run", "--period", "2026-03", "--json", *FAST_ARGS, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["verdict"] == "promote-first" and record["champion_version_after"] == "1"
    assert record["period"] == "2026-03" and record["rows"] == 1500
    assert list(cwd.iterdir()) == []  # nothing written into the working directory
    # `reports/` holds the data gate's report of each run (tasks/gate_report.py).
    assert {p.name for p in home.iterdir()} == {"mlflow.db", "mlartifacts", "prefect", "reports"}


@pytest.mark.usefixtures("prefect_server")
def test_rejected_snapshot_exits_3_with_the_problem(
    state_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    frame = generate_snapshot("2026-04", rows=600).drop(columns=["Contract"])
    bad = tmp_path / "2026-04.csv"
    frame.to_csv(bad, index=False)
    assert main(["run", "--data", str(bad), "--period", "2026-04", *FAST_ARGS]) == 3
    err = capsys.readouterr().err
    assert "SnapshotRejected" in err and "2026-04.csv" in err and "Contract" in err
    assert not (state_home / "mlartifacts").exists()  # nothing was logged


def test_invalid_parameters_exit_2(state_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--period", "2026-13"]) == 2
    assert "period" in capsys.readouterr().err
    assert main(["run", "--folds", "1"]) == 2


def test_command_line_maps_onto_flow_parameters() -> None:
    args = _parser().parse_args(
        ["run", "--models", "lr,gbc", "--min-improvement", "0.01", "--period", "2026-01"]
    )
    params = _run_parameters(args)
    assert params["models"] == ["lr", "gbc"] and params["period"] == "2026-01"
    assert params["rule"] == {"min_improvement": 0.01}
    assert "data" not in params and "folds" not in params  # unset options keep flow defaults


def test_summary_names_verdict_scores_version_and_where_to_look() -> None:
    record = DecisionRecord(
        model_name="telco-churn",
        period="2026-05",
        data_source="/data/2026-05.csv",
        data_digest="sha256:abc",
        idempotency_key="telco-churn:2026-05",
        rows=7043,
        train_rows=5634,
        holdout_rows=1409,
        validation="passed 66/66 expectations on 7,043 rows",
        seed=42,
        rule=DecisionRule(),
        challenger=ModelScores(
            version="3", algorithm="lr", holdout={"roc_auc": 0.8512}, cv={"roc_auc": 0.8471}
        ),
        champion=ModelScores(version="2", holdout={"roc_auc": 0.8431}),
        verdict="promote",
        promoted=True,
        reason="challenger roc_auc 0.8512 beats champion 0.8431 by +0.0081",
        champion_version_after="3",
        mlflow_run_id="r123",
        mlflow_run_url="http://127.0.0.1:5000/#/experiments/1/runs/r123",
        champion_url="http://127.0.0.1:5000/#/models/telco-churn/versions/3",
        tracking_uri="sqlite:////state/mlflow.db",
        decided_at="2026-05-01T02:00:00+00:00",
        stage_seconds={"train": 10.0, "validate": 0.5},
    )
    text = summary(record)
    for needle in ("PROMOTE", "0.8512", "0.8431", "passed 66/66", "v3", "r123", "@champion"):
        assert needle in text


def test_no_temporary_server_when_an_api_is_configured(prefect_server: None) -> None:
    from flows.cli import _start_temporary_server

    assert _start_temporary_server("run") is None  # the session's server is used
    assert _start_temporary_server("status") is None  # and status runs no flow at all


def test_a_temporary_server_that_does_not_answer_is_a_named_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.temporary_server import ServerStartFailed, TemporaryServer

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    server = TemporaryServer(timeout=0.2)  # far less than its boot takes
    server.start()
    try:
        with pytest.raises(
            ServerStartFailed, match=r"did not answer within 0.2 s.*temporary-server"
        ):
            server.wait()
    finally:
        server.stop()
    assert server.process is None and (tmp_path / "prefect" / "temporary-server.log").is_file()
