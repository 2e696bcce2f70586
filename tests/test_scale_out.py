"""Scale-out: the unchanged retrain flow on a Dask cluster (prefect-dask's DaskTaskRunner), with
PyCaret's own distributed compare_models (FugueBackend) on the same cluster."""

from __future__ import annotations

import json
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
    assert "distributed.scheduler" not in done.stderr, done.stderr[-2000:]
    assert "distributed.nanny" not in done.stderr, done.stderr[-2000:]
