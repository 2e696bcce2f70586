"""Validate-only: `churn-retrain validate` and the `validate-snapshot` flow, no training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from flows.parameters import ValidateParameters
from flows.validate import validate
from tasks.data.generate import generate_snapshot
from tasks.errors import SnapshotRejected
from tests.servers import clean_env, run_cli


def _shuffled_real(real_frame: pd.DataFrame, path: Path) -> Path:
    """The real Telco rows with the columns in another order, written as the loader reads them."""
    columns = real_frame.columns.to_series().sample(frac=1, random_state=3).tolist()
    assert columns != list(real_frame.columns)
    real_frame[columns].to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_cold_command_passes_real_data_without_importing_pycaret(
    real_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """As a data engineer runs it: a fresh process, no servers; `-X importtime` lists imports."""
    data = _shuffled_real(real_frame, tmp_path / "delivery.csv")
    env = clean_env(CHURN_RETRAIN_HOME=str(tmp_path / "state"))
    done = run_cli(
        "validate", "--data", str(data), cwd=tmp_path, env=env, python_flags=("-X", "importtime")
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0].endswith(": PASSED")
    assert "validation   passed 66/66 expectations on 7,043 rows" in done.stdout
    assert "drift        skipped: no champion yet (no MLflow store)" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "great_expectations" in imported and "prefect" in imported  # importtime worked
    assert not {m for m in imported if m.startswith("pycaret")}
    assert not (tmp_path / "state" / "mlflow.db").exists()  # validation created no MLflow store


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_rejected_delivery_exits_3_with_json_by_column(
    state_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = generate_snapshot("2026-04", rows=600)
    frame.loc[:4, "Contract"] = "SECRET-weekly"
    frame.loc[:9, "gender"] = None
    path = tmp_path / "2026-04.csv"
    frame.to_csv(path, index=False)
    code = main(
        ["validate", "--data", str(tmp_path / "{period}.csv"), "--period", "2026-04", "--json"]
    )
    assert code == 3
    out, err = capsys.readouterr()
    gate = json.loads(out)
    assert gate["passed"] is False and gate["period"] == "2026-04"
    by_column = {entry["column"]: entry for entry in gate["failures_by_column"]}
    assert by_column["Contract"]["rows"] == 5 and by_column["gender"]["rows"] == 10
    assert Path(gate["report"]).is_file()
    assert "SnapshotRejected" in err and "2026-04.csv rejected" in err
    assert "SECRET" not in out + err + Path(gate["report"]).read_text()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_flow_returns_the_verdict_and_writes_the_report(state_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "2026-05.csv"
    generate_snapshot("2026-05", rows=800).to_csv(path, index=False)
    verdict = validate(ValidateParameters(data=str(path), period="2026-05"))
    assert verdict.rows == 800 and verdict.validation.startswith("passed")
    assert verdict.drift == "skipped: no champion yet (no MLflow store)"
    report = Path(verdict.report)
    assert report.is_file() and report.is_relative_to(state_home / "reports")
    assert "PASSED" in report.read_text()
    with pytest.raises(SnapshotRejected, match=r"2026-05\.csv: header only, no rows"):
        path.write_text(path.read_text().splitlines()[0] + "\n")
        validate(ValidateParameters(data=str(path), period="2026-05"))


def test_parameters_are_bounded_and_described() -> None:
    with pytest.raises(ValueError, match="data"):
        ValidateParameters.model_validate({})
    with pytest.raises(ValueError, match="period"):
        ValidateParameters(data="x.csv", period="2026-13")
    with pytest.raises(ValueError, match="below warn"):
        ValidateParameters(data="x.csv", drift_gate={"warn": 0.5, "fail": 0.2})
    schema = ValidateParameters.model_json_schema()
    assert all("description" in field for field in schema["properties"].values())


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_parquet_delivery_streams_to_the_csv_verdict(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet month is validated chunk by chunk, never loaded whole, with the CSV's verdict."""
    import flows.validate

    frame = generate_snapshot("2026-06", rows=3000)
    frame.to_csv(tmp_path / "2026-06.csv", index=False)
    frame.to_parquet(tmp_path / "2026-06.parquet", index=False, row_group_size=700)
    from_csv = validate(ValidateParameters(data=str(tmp_path / "2026-06.csv"), period="2026-06"))

    def loaded_whole(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Parquet month must not be loaded whole")

    monkeypatch.setattr(flows.validate, "admit_snapshot", loaded_whole)
    from_parquet = validate(
        ValidateParameters(
            data=str(tmp_path / "{period}.parquet"), period="2026-06", chunk_rows=1000
        )
    )
    same = ("rows", "digest", "validation", "drift")
    assert {k: getattr(from_parquet, k) for k in same} == {k: getattr(from_csv, k) for k in same}
    assert from_parquet.validation == "passed 66/66 expectations on 3,000 rows"
    assert Path(from_parquet.report).is_file() and "PASSED" in Path(from_parquet.report).read_text()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_rejected_parquet_delivery_exits_3_with_json_by_column(
    state_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = generate_snapshot("2026-04", rows=2400)
    frame.loc[:4, "Contract"] = "SECRET-weekly"
    frame.loc[1995:2004, "gender"] = None  # across the boundary of two 1,000-row chunks
    frame.loc[2399, "customerID"] = frame.loc[0, "customerID"]  # in the first and last chunk
    frame.to_parquet(tmp_path / "2026-04.parquet", index=False)
    code = main(
        ["validate", "--data", str(tmp_path / "{period}.parquet"), "--period", "2026-04",
         "--chunk-rows", "1000", "--json"]
    )  # fmt: skip
    assert code == 3
    out, err = capsys.readouterr()
    gate = json.loads(out)
    assert gate["passed"] is False and gate["rows"] == 2400
    by_column = {entry["column"]: entry for entry in gate["failures_by_column"]}
    assert by_column["Contract"]["rows"] == 5 and by_column["gender"]["rows"] == 10
    assert by_column["customerID"]["rows"] == 2
    assert "2026-04.parquet rejected" in err
    assert "SECRET" not in out + err + Path(gate["report"]).read_text()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_parquet_drift_is_judged_as_for_the_csv(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a champion's profile, the streamed drift columns give the loaded frame's PSI."""
    import flows.validate
    import tasks.gate.admit
    from tasks.gate.drift import Reference, profile_frame

    reference = Reference(
        profile=profile_frame(generate_snapshot("2026-01", rows=3000)), champion_version="7"
    )
    for module in (flows.validate, tasks.gate.admit):
        monkeypatch.setattr(module, "find_reference_profile", lambda settings, model: reference)
    verdicts = {}
    for drift in (0.0, 1.0):
        frame = generate_snapshot("2026-06", rows=3000, drift=drift, scenario="price_rise")
        for suffix in ("csv", "parquet"):
            path = tmp_path / f"{drift}.{suffix}"
            if suffix == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            params = ValidateParameters(data=str(path), period="2026-06", chunk_rows=1000)
            try:
                verdicts[drift, suffix] = validate(params).drift
            except SnapshotRejected as error:
                verdicts[drift, suffix] = str(error).replace(str(path), "<file>")
    assert verdicts[0.0, "parquet"] == verdicts[0.0, "csv"]
    assert verdicts[0.0, "csv"].startswith("no drift against champion v7's training data")
    assert verdicts[1.0, "parquet"] == verdicts[1.0, "csv"]
    assert "rejected: drift: " in verdicts[1.0, "csv"] and "MonthlyCharges" in verdicts[1.0, "csv"]
