"""The bad-input catalogue: every kind of broken month is stopped before training, loudly.

One champion is trained once for the module (generated 2026-01). Then, for each case, a broken
2026-02 file goes through the real `retrain` flow under the session's Prefect server with a
real HTTP receiver on 127.0.0.1 as the alert URL. Every case must:
- end the flow run Failed with `SnapshotRejected` and a message naming the problem;
- deliver exactly one alert to the receiver, carrying the period, the problem and a report link,
  and no raw customer values (no customer IDs, no planted SECRET values);
- leave the champion alias, the model versions and the MLflow runs exactly as they were.
"""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from flows.parameters import RetrainParameters, ValidateParameters
from flows.retrain import retrain
from flows.validate import validate
from tasks.data.generate import generate_snapshot
from tasks.errors import SnapshotRejected
from tasks.gate.drift import PROFILE_ARTIFACT
from tasks.gate.report import ARTIFACT_KEY
from tasks.registry.aliases import CHAMPION
from tests.alert_receivers import AlertReceiver, receiver
from tests.servers import clean_env, flow_run_logs, run_cli

pytestmark = pytest.mark.slow

MODEL = "telco-churn"
PERIOD = "2026-02"
ROWS = 1500
FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": ROWS}
SECRET = "SECRET-7731"


@dataclass(frozen=True)
class Case:
    """One broken delivery: how to make it from a clean month, and what the gate must say."""

    name: str
    make: Callable[[pd.DataFrame], bytes]
    problem: str  # regex, searched in the exception message and in the alert text
    env: dict[str, str] = field(default_factory=dict)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _edit(change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Callable[[pd.DataFrame], bytes]:
    """A case made by changing a copy of the clean frame, then written as CSV."""

    def make(clean: pd.DataFrame) -> bytes:
        frame = clean.copy()
        changed = change(frame)
        return _csv(frame if changed is None else changed).encode()

    return make


def _lines(change: Callable[[list[str]], list[str]]) -> Callable[[pd.DataFrame], bytes]:
    """A case made by changing the clean file's lines of text."""

    def make(clean: pd.DataFrame) -> bytes:
        return "\n".join(change(_csv(clean).splitlines())).encode() + b"\n"

    return make


def _set(column: str, rows: slice | list[int], value: object) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        if isinstance(value, str) and frame[column].dtype != object:
            frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value

    return change


def _drop_last_field(lines: list[str], line_number: int) -> list[str]:
    lines[line_number - 1] = lines[line_number - 1].rsplit(",", 1)[0]
    return lines


def _latin1(clean: pd.DataFrame) -> bytes:
    lines = _csv(clean).splitlines()
    lines[9] = lines[9].replace("Male", "Mâle", 1).replace("Female", "Fémale", 1)
    return ("\n".join(lines) + "\n").encode("latin-1")


def _xlsx_like(clean: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.csv", _csv(clean))
    return buffer.getvalue()


def _duplicate_ids(frame: pd.DataFrame) -> None:
    frame.loc[5, "customerID"] = frame.loc[4, "customerID"]


def _total_below_monthly(frame: pd.DataFrame) -> None:
    paying = frame.index[frame["tenure"] > 1][:200]
    frame.loc[paying, "TotalCharges"] = 1.0


def _churn_above_band(frame: pd.DataFrame) -> None:
    frame.loc[frame.index[: int(len(frame) * 0.7)], "Churn"] = "Yes"


def _no_internet_but_security(frame: pd.DataFrame) -> None:
    offline = frame.index[frame["InternetService"] == "No"][:7]
    frame.loc[offline, "OnlineSecurity"] = "Yes"


def _price_rise(clean: pd.DataFrame) -> bytes:
    return _csv(generate_snapshot(PERIOD, rows=ROWS, drift=1.0, scenario="price_rise")).encode()


CASES = [
    # --- parse guards: the file itself ---
    Case("empty file", lambda clean: b"", r"file is empty"),
    Case("not UTF-8", _latin1, r"not UTF-8 text \(first bad byte on line 10"),
    Case("UTF-16", lambda clean: _csv(clean).encode("utf-16"), r"file is UTF-16 text; re-export"),
    Case("Excel workbook", _xlsx_like, r"file is a ZIP archive \(an Excel \.xlsx workbook\?\)"),
    Case(
        "semicolon delimiter",
        lambda clean: clean.to_csv(index=False, sep=";").encode(),
        r"one column only: is the delimiter ';'\?",
    ),
    Case(
        "duplicated header",
        _lines(lambda lines: [lines[0].replace("gender", "tenure"), *lines[1:]]),
        r"duplicated header names: tenure",
    ),
    Case(
        "ragged row",
        _lines(lambda lines: _drop_last_field(lines, 57)),
        r"line 57 has 20 fields, the header has 21",
    ),
    Case("header only", _lines(lambda lines: lines[:1]), r"header only, no rows"),
    Case("no header row", _lines(lambda lines: lines[1:]), r"the first line is not a header row"),
    Case(
        "trailing commas",
        _lines(lambda lines: [line + "," for line in lines]),
        r"empty column name at position 22 \(a trailing comma\?\)",
    ),
    Case(
        "over the size limit",
        _edit(lambda frame: None),
        r"over the 10,000-byte limit",
        env={"CHURN_RETRAIN_MAX_SNAPSHOT_BYTES": "10000"},
    ),
    # --- the expectation suite: columns and types ---
    Case(
        "missing column",
        _edit(lambda frame: frame.drop(columns=["Contract"])),
        r"\(table\): missing column Contract",
    ),
    Case(
        "renamed column",
        _edit(lambda frame: frame.rename(columns={"tenure": "Tenure"})),
        r"missing column tenure; 1 unexpected column \('Tenure' looks like tenure\)",
    ),
    Case(
        "extra column",
        _edit(lambda frame: frame.assign(Region="north")),
        r"\(table\): 1 unexpected column",
    ),
    Case(
        "text in a numeric column",
        _edit(_set("MonthlyCharges", slice(0, 30), SECRET)),
        r"MonthlyCharges: 30 values of wrong type \(expected numeric, got object\)",
    ),
    # --- values ---
    Case(
        "tenure out of range",
        _edit(_set("tenure", [1, 2, 3], 99)),
        r"tenure: 3 values outside \[0, 72\]",
    ),
    Case(
        "negative charges",
        _edit(_set("MonthlyCharges", [7, 8], -5.0)),
        r"MonthlyCharges: 2 values outside \[0, 200\]",
    ),
    Case(
        "unknown category",
        _edit(_set("Contract", [1, 2, 3, 4], SECRET)),
        r"Contract: 4 values outside \{Month-to-month, One year, Two year\}",
    ),
    Case(
        "duplicated customer IDs",
        _edit(_duplicate_ids),
        r"customerID: 2 rows share their value with another row",
    ),
    Case(
        "nulls where none are allowed",
        _edit(_set("gender", slice(0, 5), None)),
        r"gender: 5 null values",
    ),
    Case(
        "too many blank TotalCharges",
        _edit(_set("TotalCharges", slice(0, 60), None)),
        r"TotalCharges: 6\d null values \(\d\.\d%\), at most 1\.0% allowed",
    ),
    # --- the target ---
    Case(
        "single-class target",
        _edit(_set("Churn", slice(None), "No")),
        r"Churn: \{Yes\} never occurs \(needs all of \{No, Yes\}\)",
    ),
    Case(
        "churn rate above the band",
        _edit(_churn_above_band),
        r"Churn: churn rate \d\d\.\d% is above the 50\.0% ceiling",
    ),
    Case(
        "tiny file",
        _edit(lambda frame: frame.head(50)),
        r"\(table\): 50 rows, expected at least 200",
    ),
    # --- cross-column rules ---
    Case(
        "TotalCharges below MonthlyCharges",
        _edit(_total_below_monthly),
        r"TotalCharges: 200 rows \(\d+\.\d%\) with TotalCharges < MonthlyCharges where tenure > 0",
    ),
    Case(
        "add-on without internet",
        _edit(_no_internet_but_security),
        r"OnlineSecurity: 7 values outside \{No internet service\} where InternetService == 'No'",
    ),
    # --- drift against the champion's training data ---
    Case(
        "heavy drift (price rise)",
        _price_rise,
        r"drift: 1 of 19 columns past the fail threshold(.|\n)*MonthlyCharges: PSI \d+\.\d{3} >= "
        r"fail threshold 0\.25",
    ),
]


def test_the_catalogue_is_large_and_distinct() -> None:
    assert len(CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)
    assert len({c.problem for c in CASES}) == len(CASES)


# --- fixtures: one champion, one receiver, for the whole module -------------------------------


@dataclass
class Registry:
    champion: str | None
    versions: int
    runs: int


def _registry() -> Registry:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("churn-retrain")
    assert experiment is not None
    try:
        champion: str | None = str(client.get_model_version_by_alias(MODEL, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        champion = None
    return Registry(
        champion=champion,
        versions=len(client.search_model_versions(f"name='{MODEL}'")),
        runs=len(client.search_runs([experiment.experiment_id])),
    )


@pytest.fixture(scope="module")
def alerts() -> Iterator[AlertReceiver]:
    with receiver() as server:
        yield server


@pytest.fixture(scope="module")
def champion_home(
    prefect_server: None, tmp_path_factory: pytest.TempPathFactory, alerts: AlertReceiver
) -> Iterator[Path]:
    """A state directory with a champion trained on generated 2026-01; alerts to the receiver."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("catalogue") / "state"
        patch.setenv("CHURN_RETRAIN_HOME", str(home))
        for name in (
            "MLFLOW_TRACKING_URI",
            "MLFLOW_REGISTRY_URI",
            "CHURN_RETRAIN_TRACKING_URI",
            "CHURN_RETRAIN_ALERT_BLOCK",
        ):
            patch.delenv(name, raising=False)
        patch.setenv("CHURN_RETRAIN_ALERT_URL", alerts.url)
        first = retrain(RetrainParameters(period="2026-01", **FAST))
        assert first.promoted and first.champion_version_after == "1"
        assert first.drift == "skipped: no champion yet"
        alerts.clear()
        yield home


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """The next month from the same generator: passes the gate as it is (checked below)."""
    return generate_snapshot(PERIOD, rows=ROWS)


def _gate_artifact(flow_run_id: UUID) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[ARTIFACT_KEY]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    return str(artifact.data)


# --- the catalogue ---------------------------------------------------------------------------


def _cli_args(data: str) -> list[str]:
    """The catalogue's runs as a user types them (the session's Prefect server is configured)."""
    return [
        "run", "--period", PERIOD, "--data", data, "--models", ",".join(FAST["models"]),
        "--folds", str(FAST["folds"]), "--generated-rows", str(ROWS),
    ]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_rejected_before_training_and_alerted(
    case: Case,
    champion_home: Path,
    clean: pd.DataFrame,
    alerts: AlertReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cli.main import main

    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / f"{PERIOD}.csv").write_bytes(case.make(clean))
    before = _registry()
    alerts.clear()

    status = main(_cli_args(str(tmp_path / "{period}.csv")))

    # The run was rejected by the gate (exit 3), with the problem named and no stack trace in
    # what the command printed or in the log records its terminal handler formats (in-process,
    # Prefect's console handler writes to the stream it found at import: caplog sees the same
    # records; `test_a_bad_month_through_the_command_line` reads a real terminal).
    out, err = capfd.readouterr()
    terminal = out + err + caplog.text
    assert status == SnapshotRejected.exit_code == 3, terminal[-3000:]
    said = err[err.index("churn-retrain: SnapshotRejected: ") :]  # the message, to its end
    assert said.startswith(f"churn-retrain: SnapshotRejected: Snapshot {tmp_path}/{PERIOD}.csv")
    assert re.search(case.problem, said), said
    assert "Finished in state Failed" in terminal  # the flow's log reached the terminal
    assert "Traceback" not in terminal, terminal[-3000:]
    # Exactly one alert, with the period, the problem and a report that exists.
    assert len(alerts.bodies) == 1, alerts.bodies
    [body] = alerts.bodies
    text = body["text"]
    assert f"churn-retrain {PERIOD}: snapshot REJECTED" in body["subject"]
    assert f"Period: {PERIOD}" in text and re.search(case.problem, text), text
    flow_run_id = UUID(body["alert"]["flow_run_id"])
    assert _flow_run_state(flow_run_id) == "Failed"
    report = Path(body["alert"]["report"].removeprefix("file://"))
    assert report.is_file() and re.search(case.problem, html.unescape(report.read_text()))
    # The Prefect markdown artifact of the run summarises the failures by column.
    markdown = _gate_artifact(flow_run_id)
    assert f"## Snapshot {PERIOD}: REJECTED" in markdown
    assert "| column | failed checks | rows affected | problems |" in markdown
    # No raw customer values anywhere in the alert or the artifact.
    sent = json.dumps(body) + markdown
    assert SECRET not in sent
    assert not [cid for cid in clean["customerID"].head(100) if cid in sent]
    # Nothing changed in the registry or the tracking store.
    assert _registry() == before == Registry(champion="1", versions=1, runs=1)
    # The flow run's log (what the Prefect UI shows) says it, with no traceback.
    logs = flow_run_logs(flow_run_id)
    assert any(re.search(case.problem, line) for line in logs), logs
    assert not [line for line in logs if "Traceback" in line], logs


def test_a_bad_month_through_the_command_line(clean: pd.DataFrame, tmp_path: Path) -> None:
    """As a user runs it, in a real terminal's streams: the message, exit 3, no stack trace in
    the flow's own log lines either."""

    [case] = [c for c in CASES if c.name == "missing column"]
    (tmp_path / f"{PERIOD}.csv").write_bytes(case.make(clean))
    env = clean_env(CHURN_RETRAIN_HOME=str(tmp_path / "state"), PREFECT_LOGGING_LEVEL="INFO")
    done = run_cli(*_cli_args(str(tmp_path / "{period}.csv")), env=env)
    terminal = done.stdout + done.stderr
    assert done.returncode == 3, terminal[-3000:]
    said = done.stderr[done.stderr.index("churn-retrain: SnapshotRejected: ") :]
    assert re.search(case.problem, said), said
    assert "Finished in state Failed" in done.stderr  # the flow's log lines are in it
    assert "Traceback" not in terminal, terminal[-3000:]


def _flow_run_state(flow_run_id: UUID) -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    return None if run.state is None else run.state.name


def test_a_bug_in_a_task_keeps_its_traceback(
    champion_home: Path,
    clean: pd.DataFrame,
    alerts: AlertReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Only named failures lose their traceback: an injected bug still shows where it is, in
    the terminal (exit 1) and in the flow run's log."""
    from prefect import task

    import tasks.gate.admit as admit
    from cli.main import main

    @task(name="check-drift")
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("an injected bug")

    monkeypatch.setattr(admit, "check_drift", broken)
    clean.to_csv(tmp_path / f"{PERIOD}.csv", index=False)
    alerts.clear()
    assert main(_cli_args(str(tmp_path / "{period}.csv"))) == 1
    err = capfd.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: an injected bug" in err
    assert "the run crashed (see the traceback above)" in err
    [body] = alerts.bodies
    logs = flow_run_logs(UUID(body["alert"]["flow_run_id"]))
    assert any(
        "Traceback" in line and "ZeroDivisionError: an injected bug" in line for line in logs
    )


def test_the_champion_run_carries_its_gate_report_and_reference_profile(
    champion_home: Path,
) -> None:
    client = MlflowClient()
    version = client.get_model_version_by_alias(MODEL, CHAMPION)
    run = client.get_run(version.run_id)
    assert (
        run.data.tags["drift.status"] == "skipped"
    )  # the first champion had nothing to drift from
    assert Path(run.data.tags["gate.report"]).is_relative_to(champion_home / "reports")
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert PROFILE_ARTIFACT in names and "gate" in names
    gate = {a.path for a in client.list_artifacts(run.info.run_id, "gate")}
    assert gate == {"gate/validation.html", "gate/validation.json"}
    profile = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=PROFILE_ARTIFACT
            )
        ).read_text()
    )
    assert profile["rows"] == 1200 and set(profile["numeric"]) == {
        "tenure",
        "MonthlyCharges",
        "TotalCharges",
    }


def test_the_clean_month_itself_passes_the_gate(champion_home: Path, clean: pd.DataFrame) -> None:
    """The catalogue's cases differ from a month that passes only by what each one broke."""
    path = champion_home.parent / f"clean-{PERIOD}.csv"
    path.write_text(_csv(clean))
    verdict = validate(ValidateParameters(data=str(path), period=PERIOD))
    assert verdict.validation == "passed 66/66 expectations on 1,500 rows"
    assert verdict.drift.startswith("no drift against champion v1's training data")


def test_real_telco_csv_in_another_column_order_passes(
    champion_home: Path, real_frame: pd.DataFrame
) -> None:
    columns = real_frame.columns.to_series().sample(frac=1, random_state=11).tolist()
    path = champion_home.parent / "telco-shuffled.csv"
    real_frame[columns].to_csv(path, index=False)
    verdict = validate(ValidateParameters(data=str(path), period=PERIOD))
    assert verdict.rows == 7043 and verdict.validation == "passed 66/66 expectations on 7,043 rows"
    # Real data against a champion trained on generated data: within the fail threshold.
    assert not verdict.drift.startswith("skipped") and "fail" not in verdict.drift
    assert _registry() == Registry(champion="1", versions=1, runs=1)
