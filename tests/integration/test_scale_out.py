"""Scale-out: the unchanged retrain flow on a Dask cluster (prefect-dask's DaskTaskRunner), with
PyCaret's own distributed compare_models (FugueBackend) on the same cluster."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.errors import TrainingFailed
from tasks.training.train import train_challenger
from tests.servers import clean_env, run_cli


def test_distributed_training_outside_dask_is_refused() -> None:
    frame = pd.DataFrame({"tenure": [1, 2], "Churn": ["Yes", "No"]})
    with pytest.raises(TrainingFailed, match="distributed training needs a Dask cluster"):
        train_challenger.fn(frame, seed=1, distributed=True)


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    """Two single-threaded worker processes on this machine, as a remote cluster would be."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_the_flow_runs_unchanged_on_a_dask_cluster(
    dask_cluster: object, state_home: Path, real_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from prefect_dask import DaskTaskRunner

    params = RetrainParameters(period="2026-01", data=str(real_csv))
    serial = retrain(params)

    # A fresh registry (a run exports its tracking URI for MLflow: drop it, as a new process).
    monkeypatch.setenv("CHURN_RETRAIN_HOME", str(state_home.parent / "dask"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    on_dask = retrain.with_options(task_runner=DaskTaskRunner(address=address))
    record = on_dask(params.model_copy(update={"distributed_training": True}))

    workers = set(dask_cluster.workers.values())  # type: ignore[attr-defined]
    worker = mlflow.get_run(record.mlflow_run_id).data.tags["training.worker"]
    assert worker in {w.worker_address for w in workers}, worker
    # Same data, same seed: the same challenger and decision as the serial run.
    assert record.verdict == serial.verdict == "promote-first"
    assert record.challenger.algorithm == serial.challenger.algorithm
    assert record.challenger.cv == pytest.approx(serial.challenger.cv, abs=1e-4)
    assert record.challenger.holdout == pytest.approx(serial.challenger.holdout, abs=1e-9)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_command_line_trains_on_a_local_dask_cluster_and_keeps_its_log_readable(
    tmp_path: Path,
) -> None:
    """`churn-retrain run --dask local` as a user runs it, with INFO logging on."""
    import mlflow
    from prefect.settings import PREFECT_API_URL

    home = tmp_path / "state"
    env = clean_env(
        CHURN_RETRAIN_HOME=str(home),
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_LOGGING_LEVEL="INFO",
    )
    args = [
        "--period",
        "2026-02",
        "--data",
        "generated",
        "--generated-rows",
        "1500",
        "--models",
        "lr",
        "--folds",
        "3",
    ]
    done = run_cli("run", "--dask", "local", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["verdict"] == "promote-first" and record["rows"] == 1500
    run = mlflow.MlflowClient(tracking_uri=record["tracking_uri"]).get_run(record["mlflow_run_id"])
    worker = run.data.tags["training.worker"]
    assert worker.startswith("tcp://127.0.0.1:"), worker  # trained on a worker, not in-process
    assert "Task run 'train-challenger" in done.stderr  # the run's own log is there ...
    # ... and not buried under the scheduler's and nannies' connection chatter.
    # (A loaded machine may add a nanny's warning at teardown: warnings still show, by design.)
    chatter = re.findall(r"INFO +\| distributed\.(?:scheduler|nanny)", done.stderr)
    assert not chatter, done.stderr[-2000:]


def _task_run_names(flow_run_id: object) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [run.name for run in runs if run.state is not None and run.state.is_completed()]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_validation_by_row_group_on_dask_gives_the_single_pass_verdict(
    dask_cluster: object, state_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Parquet month in a shared directory, one task per row group on the workers: the same
    rows, digest, report and drift as one pass in this process; a bad month the same rejection."""
    from prefect_dask import DaskTaskRunner

    from cli.main import main
    from flows.parameters import ValidateParameters
    from flows.validate import validate
    from tasks.data.generate import generate_snapshot
    from tasks.errors import SnapshotRejected

    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    on_dask = validate.with_options(task_runner=DaskTaskRunner(address=address))
    good = generate_snapshot("2026-06", rows=6000)
    good.to_parquet(tmp_path / "good.parquet", index=False, row_group_size=1500)
    params = ValidateParameters(data=str(tmp_path / "good.parquet"), period="2026-06")
    single = validate(params)
    state = on_dask(params, return_state=True)
    spread = state.result()
    same = ("rows", "digest", "validation", "drift")
    assert {k: getattr(spread, k) for k in same} == {k: getattr(single, k) for k in same}
    assert spread.validation == "passed 66/66 expectations on 6,000 rows"
    names = _task_run_names(state.state_details.flow_run_id)
    assert sum(name.startswith("validate-partition") for name in names) == 4, names

    bad = good.copy()
    bad.loc[:4, "Contract"] = "SECRET-weekly"
    bad.loc[1495:1504, "gender"] = None  # across two row groups
    bad.loc[5999, "customerID"] = bad.loc[0, "customerID"]  # in the first and the last
    bad.to_parquet(tmp_path / "bad.parquet", index=False, row_group_size=1500)
    params = ValidateParameters(data=str(tmp_path / "bad.parquet"), period="2026-06")
    with pytest.raises(SnapshotRejected) as single_error:
        validate(params)
    with pytest.raises(SnapshotRejected) as spread_error:
        on_dask(params)
    assert str(spread_error.value) == str(single_error.value)
    assert "Contract" in str(spread_error.value) and "customerID" in str(spread_error.value)

    capsys.readouterr()
    argv = ["validate", "--data", str(tmp_path / "bad.parquet"), "--period", "2026-06"]
    assert main([*argv, "--dask", address, "--json"]) == 3
    out, err = capsys.readouterr()
    by_column = {entry["column"]: entry for entry in json.loads(out)["failures_by_column"]}
    assert by_column["gender"]["rows"] == 10 and by_column["customerID"]["rows"] == 2
    assert "Traceback" not in err and "SECRET" not in out + err


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_scoring_by_row_group_on_dask_writes_the_single_process_scores(
    dask_cluster: object, state_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Parquet base in a shared folder, one task per row group on the workers: the same
    scores in the same order as here; a bad row group or an ID in two of them, no output."""
    from prefect_dask import DaskTaskRunner

    from cli.main import main
    from flows.parameters import ScoreParameters
    from flows.score import score
    from tasks.data.generate import generate_snapshot
    from tasks.errors import SnapshotRejected

    retrain(
        RetrainParameters(
            period="2026-02", data="generated", models=["lr"], folds=3, generated_rows=1500
        )
    )
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    on_dask = score.with_options(task_runner=DaskTaskRunner(address=address))
    base = generate_snapshot("2026-03", rows=5000)
    folder = tmp_path / "base"
    folder.mkdir()
    base.iloc[:3000].to_parquet(folder / "part-0.parquet", index=False, row_group_size=1000)
    base.iloc[3000:].to_parquet(folder / "part-1.parquet", index=False, row_group_size=1000)
    params = ScoreParameters(data=str(folder), period="2026-03", batch_rows=1000)
    here = score(params.model_copy(update={"output": str(tmp_path / "here.parquet")}))
    state = on_dask(
        params.model_copy(update={"output": str(tmp_path / "there.csv")}), return_state=True
    )
    there = state.result()
    assert here.rows == there.rows == 5000
    assert there.predicted_churners == here.predicted_churners
    by_here, by_there = pd.read_parquet(here.output), pd.read_csv(there.output)
    assert by_there["customerID"].tolist() == base["customerID"].tolist()
    assert by_there["churn_probability"].to_numpy() == pytest.approx(
        by_here["churn_probability"].to_numpy(), abs=1e-12
    )
    names = _task_run_names(state.state_details.flow_run_id)
    assert sum(name.startswith("score-partition") for name in names) == 5, names

    bad = base.copy()
    bad.loc[3500:3504, "Contract"] = "SECRET-weekly"  # in the fourth row group
    bad.iloc[3000:].to_parquet(folder / "part-1.parquet", index=False, row_group_size=1000)
    out = tmp_path / "never.parquet"
    with pytest.raises(SnapshotRejected, match="base row group 4 rows 1-1,000 rejected") as error:
        on_dask(params.model_copy(update={"output": str(out)}))
    assert "Contract: 5 values outside" in str(error.value)
    assert not out.exists() and not list(tmp_path.glob("never*"))

    twice = base.iloc[3000:].copy()
    twice.iloc[0, twice.columns.get_loc("customerID")] = base.loc[0, "customerID"]
    twice.to_parquet(folder / "part-1.parquet", index=False, row_group_size=1000)
    capsys.readouterr()
    argv = ["score", "--data", str(folder), "--period", "2026-03", "--output", str(out)]
    code = main([*argv, "--dask", address])
    _, err = capsys.readouterr()
    assert code == 3, err
    assert "different batches" in err and "Traceback" not in err and "SECRET" not in err
    assert not list(tmp_path.glob("never*"))
