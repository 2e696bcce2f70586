"""`churn-retrain`: flags from the parameter models, exit statuses, JSON output, the human summary,
the Prefect server of a cold run, and a clean working directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from pydantic_settings import CLI_SUPPRESS

from cli.commands import flow_parameters
from cli.main import main
from cli.options import (
    AutomationCommand,
    BackfillCommand,
    ChurnRetrainCli,
    GenerateCommand,
    PruneCommand,
    ReplayCommand,
    RollbackCommand,
    RunCommand,
    ScoreCommand,
    SimulateCommand,
    SourceCommand,
    StatusCommand,
    ValidateCommand,
    parse,
)
from flows.parameters import (
    BackfillParameters,
    PruneParameters,
    ReplayParameters,
    RetrainParameters,
    RollbackParameters,
    ScoreParameters,
    SimulateParameters,
    ValidateParameters,
)
from tasks.data.generate import generate_snapshot
from tasks.data.request import SourceOptions
from tasks.decision.approval import ApprovalPolicy
from tasks.decision.campaign import Campaign
from tasks.decision.record import DecisionRecord, ModelScores
from tasks.decision.rule import DecisionRule, Guardrail, SegmentGuard
from tasks.gate.thresholds import DriftThresholds
from tasks.report.summary import summary
from tasks.target import ModelTarget
from tests.servers import clean_env, run_cli

FAST_ARGS = ["--generated-rows", "1500", "--models", "lr", "--folds", "3"]

#: Each command, its model, and the flow's parameter model it extends (None: no flow).
COMMANDS: list[tuple[str, type[BaseModel], type[BaseModel] | None]] = [
    ("run", RunCommand, RetrainParameters),
    ("backfill", BackfillCommand, BackfillParameters),
    ("replay", ReplayCommand, ReplayParameters),
    ("status", StatusCommand, None),
    ("rollback", RollbackCommand, RollbackParameters),
    ("prune", PruneCommand, PruneParameters),
    ("simulate", SimulateCommand, SimulateParameters),
    ("score", ScoreCommand, ScoreParameters),
    ("generate", GenerateCommand, None),
    ("validate", ValidateCommand, ValidateParameters),
    ("automation", AutomationCommand, None),
    ("source", SourceCommand, None),
]


def _leaves(model: type[BaseModel], default: object, prefix: str = "") -> Iterator[tuple]:
    """(flag, description, effective default or PydanticUndefined) of every field, nested
    models walked into: their defaults are the parent's default instance's values."""
    for name, field in model.model_fields.items():
        if CLI_SUPPRESS in field.metadata:  # not a flag (the retrain's period, in a backfill)
            continue
        flag = prefix + (field.alias or name).replace("_", "-")
        value = (
            getattr(default, name)
            if default is not None
            else field.get_default(call_default_factory=True)
        )
        nested = field.annotation
        # An optional section (`campaign: Campaign | None`): its flags show the section's own
        # defaults, which apply when any of them is given.
        options = [a for a in get_args(nested) if a is not type(None)]
        if len(options) == 1 and isinstance(options[0], type) and issubclass(options[0], BaseModel):
            nested, value = options[0], options[0]()
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            yield from _leaves(nested, value, flag + ".")
        else:
            yield flag, field.description, value


def _help_entries(command: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """`churn-retrain COMMAND --help`, one entry per option: its flags, then its help text."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    entries: dict[str, str] = {}
    current = ""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            entries[current] = line.strip()
        elif current and line.startswith("      "):
            entries[current] += " " + line.strip()
        else:
            current = ""
    return entries


@pytest.mark.parametrize(("command", "model", "flow_model"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_field_is_a_flag_with_the_model_default_once(
    command: str,
    model: type[BaseModel],
    flow_model: type[BaseModel] | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # one line per option: nothing wrapped
    if flow_model is not None:  # the command extends the flow's model: nothing retyped
        assert issubclass(model, flow_model)
        assert set(flow_model.model_fields) <= set(model.model_fields)
    entries = _help_entries(command, capsys)
    leaves = list(_leaves(model, None))
    flags = {flag.removeprefix("--") for flag in entries if flag.startswith("--")}
    assert {flag for flag, _, _ in leaves} == flags - {"help"}
    for flag, description, default in leaves:
        entry = entries[f"--{flag}"]
        assert description and description in entry, flag
        if default is PydanticUndefined:
            assert entry.endswith("(required)"), entry
            continue
        shown = "null" if default is None else str(default)
        assert entry.count("(default: ") == 1 and entry.endswith(f"(default: {shown})"), entry


def test_root_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, model, _ in COMMANDS:
        assert name in out and str(model.__doc__).split()[0] in out
    assert {f.alias or n for n, f in ChurnRetrainCli.model_fields.items()} == {
        c[0] for c in COMMANDS
    }


def _differs_everywhere(value: BaseModel, default: BaseModel) -> list[str]:
    """Fields (dotted) where `value` still equals `default`."""
    same = []
    for name in type(value).model_fields:
        mine, theirs = getattr(value, name), getattr(default, name)
        if isinstance(mine, BaseModel) and not isinstance(mine, Guardrail):
            same += [f"{name}.{n}" for n in _differs_everywhere(mine, theirs)]
        elif mine == theirs:
            same.append(name)
    return same


def test_every_retrain_parameter_is_settable_from_the_command_line() -> None:
    expected = RetrainParameters(
        period="2026-07",
        data="/deliveries/{period}.csv",
        source=SourceOptions(
            format="csv.gz", table="telco", query="SELECT 1", period_column="month"
        ),
        model=ModelTarget(
            name="churn-m2m",
            experiment="segments",
            suite="/suites/m2m.json",
            rows="Contract == 'Month-to-month'",
        ),
        seed=7,
        holdout_fraction=0.3,
        models=["lr", "gbc"],
        folds=4,
        budget_minutes=12.5,
        max_train_rows=250_000,
        distributed_training=True,
        rule=DecisionRule(
            metric="pr_auc",
            method="point",
            min_improvement=0.01,
            confidence=0.9,
            n_bootstrap=500,
            guardrails=(Guardrail(metric="f1", max_worsening=0.02),),
            campaign=Campaign(
                capacity=0.05,
                customers=900,
                save_rate=0.4,
                contact_cost=8.5,
                customer_value="24 * MonthlyCharges",
            ),
            segments=SegmentGuard(
                columns=("Contract", "tenure:12/24"),
                metric="recall_at_capacity",
                tolerance=0.03,
                min_rows=150,
                min_churners=15,
            ),
            floor=0.6,
            leakage_ceiling=None,
            min_holdout_rows=50,
            holdout_half_width=0.01,
            health_tolerance=0.05,
            replace_unusable_champion=False,
        ),
        approval=ApprovalPolicy(required=True, timeout_minutes=90, poll_seconds=5),
        generated_rows=1500,
        drift=0.4,
        scenario="price_rise",
        drift_gate=DriftThresholds(enabled=False, warn=0.2, fail=0.5),
        create_promotion_lock=False,
    )
    assert _differs_everywhere(expected, RetrainParameters()) == []  # every field is tried
    argv = [
        "run",
        *("--period", "2026-07", "--data", "/deliveries/{period}.csv", "--seed", "7"),
        *("--source.format", "csv.gz", "--source.table", "telco", "--source.query", "SELECT 1"),
        *("--source.period-column", "month"),
        *("--model.name", "churn-m2m", "--model.experiment", "segments"),
        *("--model.suite", "/suites/m2m.json", "--model.rows", "Contract == 'Month-to-month'"),
        *("--holdout-fraction", "0.3", "--models", "lr,gbc", "--folds", "4"),
        *("--budget-minutes", "12.5", "--distributed-training", "--dask", "local"),
        *("--max-train-rows", "250000"),
        *("--rule.metric", "pr_auc", "--rule.method", "point"),
        *("--rule.min-improvement", "0.01", "--rule.confidence", "0.9"),
        *(
            "--rule.n-bootstrap",
            "500",
            "--rule.guardrails",
            '[{"metric": "f1", "max_worsening": 0.02}]',
        ),
        *("--rule.floor", "0.6", "--rule.leakage-ceiling", "null"),
        *("--rule.campaign.capacity", "0.05", "--rule.campaign.customers", "900"),
        *("--rule.campaign.save-rate", "0.4", "--rule.campaign.contact-cost", "8.5"),
        *("--rule.campaign.customer-value", "24 * MonthlyCharges"),
        *("--rule.segments.columns", "Contract,tenure:12/24"),
        *("--rule.segments.metric", "recall_at_capacity", "--rule.segments.tolerance", "0.03"),
        *("--rule.segments.min-rows", "150", "--rule.segments.min-churners", "15"),
        *("--approval.required", "--approval.timeout-minutes", "90"),
        *("--approval.poll-seconds", "5"),
        *("--rule.min-holdout-rows", "50", "--no-rule.replace-unusable-champion"),
        *("--rule.health-tolerance", "0.05", "--rule.holdout-half-width", "0.01"),
        *("--generated-rows", "1500", "--drift", "0.4", "--scenario", "price_rise"),
        *("--no-drift-gate.enabled", "--drift-gate.warn", "0.2", "--drift-gate.fail", "0.5"),
        "--no-create-promotion-lock",
    ]
    name, command = parse(argv)
    assert name == "run" and isinstance(command, RunCommand) and command.dask == "local"
    assert flow_parameters(command, RetrainParameters) == expected


def test_unset_flags_keep_the_flow_defaults() -> None:
    _, command = parse(["run", "--rule.min-improvement", "0.01", "--models", "lr,gbc"])
    params = flow_parameters(command, RetrainParameters)
    assert params == RetrainParameters(
        models=["lr", "gbc"], rule=DecisionRule(min_improvement=0.01)
    )
    _, simulate = parse(["simulate", "--drift-gate.warn", "0.2"])
    # Simulate's own default (report drift, never reject) stays under a partial change.
    assert simulate.drift_gate == DriftThresholds(warn=0.2, fail=10.0)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--period", "2026-13"], "--period: String should match pattern"),
        (["run", "--folds", "1"], "--folds: Input should be greater than or equal to 2"),
        (["run", "--rule.min-improvement", "0.9"], "--rule: min_improvement 0.9 is more than"),
        (["run", "--rule.segments.columns", "Region"], "segment column 'Region' is not"),
        (["run", "--rule.campaign.customer-value", "x*2"], "names 'x', not a numeric column"),
        (["run", "--rule.metric", "revenue"], "--rule.metric: Input should be"),
        (["run", "--rule.method", "delong", "--rule.metric", "brier"], "--rule: method 'delong'"),
        (["run", "--distributed-training"], "--distributed-training needs --dask"),
        (["validate", "--data", "x.csv", "--drift-gate.fail", "0.01"], "--drift-gate: fail"),
        (["rollback", "--to", "3"], "unrecognized arguments: --to 3"),
        (["rollback", "--to-version", "0"], "--to-version: String should match"),
        (["score"], "required: --data"),
        ([], "a command is needed: run, backfill, replay, status"),
    ],
)
def test_invalid_flags_exit_2_with_one_line_naming_the_flag(
    argv: list[str], needle: str, state_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""


def test_cold_run_in_a_fresh_process_prints_one_json_record(tmp_path: Path) -> None:
    """The main job as a user runs it: no Prefect server, no MLflow server, fresh state."""
    home, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(CHURN_RETRAIN_HOME=str(home))
    done = run_cli(
        "run", "--period", "2026-03", "--data", "generated", "--json", *FAST_ARGS, cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["verdict"] == "promote-first" and record["champion_version_after"] == "1"
    assert record["period"] == "2026-03" and record["rows"] == 1500
    assert list(cwd.iterdir()) == []  # nothing written into the working directory
    # `reports/` holds the data gate's report of each run (tasks/gate/report.py).
    # `mlflow.db.lock`: the first client of each process creates/migrates the store under it.
    assert {p.name for p in home.iterdir()} == {
        *("mlflow.db", "mlflow.db.lock", "mlartifacts", "prefect", "reports")
    }
    assert (home / "prefect" / "server.log").is_file()  # the server this run started


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


def _verdict(**fields: object) -> dict[str, Any]:
    """The verdict fields of a DecisionRecord: flat, or in its `decision` (tasks/decision/)."""
    if "decision" not in DecisionRecord.model_fields:
        return fields
    decision = {
        "verdict": fields["verdict"],
        "promote": fields["promoted"],
        "promoted": fields["promoted"],
        "reason": fields["reason"],
        "champion_after": fields["champion_version_after"],
        "metric": "roc_auc",
        "challenger_score": 0.8512,
        "champion_score": 0.8431,
        "improvement": 0.0081,
    }
    return {"decision": decision}


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
        **_verdict(
            verdict="promote",
            promoted=True,
            reason="challenger roc_auc 0.8512 beats champion 0.8431 by +0.0081",
            champion_version_after="3",
        ),
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


def test_no_prefect_server_when_an_api_is_configured(prefect_server: None) -> None:
    from cli.main import start_prefect_server

    assert start_prefect_server("run") is None  # the session's server is used
    assert start_prefect_server("status") is None  # and status runs no flow at all


def test_a_prefect_server_that_does_not_answer_is_a_named_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.errors import PrefectServerFailed
    from tasks.runtime.prefect_server import PrefectServer

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    server = PrefectServer(timeout=0.2)  # far less than its boot takes
    assert server.command()[2:5] == ["prefect", "server", "start"]  # the public command
    server.start()
    try:
        with pytest.raises(PrefectServerFailed, match=r"did not answer within 0.2 s.*server.log"):
            server.wait()
    finally:
        server.stop()
    assert server.process is None and (tmp_path / "prefect" / "server.log").is_file()


_PARENT = """
import sys, time
from tasks.runtime.prefect_server import PrefectServer
server = PrefectServer()
server.start()
server.wait()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (a container's init may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_cli_leaves_no_prefect_server_behind(tmp_path: Path) -> None:
    env = clean_env(PREFECT_HOME=str(tmp_path / "prefect"))
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert _alive(server_pid)
        parent.kill()  # SIGKILL: no `finally`, no handler
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not _alive(server_pid):
                return
            time.sleep(0.2)
        os.kill(server_pid, signal.SIGKILL)
        pytest.fail("the Prefect server outlived the SIGKILLed CLI by 30 s")
    finally:
        parent.kill()
