"""The retrain on a Parquet month it never holds (issue 33): one pass validates it and keeps its
keys, a second takes the holdout and the training sample. The decision record is the one the
same month loaded whole gives, field for field (replay's comparison), on months of 100k and 2M
rows, with and without a champion to keep out of the holdout; on a Dask cluster, both passes
run a task per row group and decide the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.decision.record import DecisionRecord
from tasks.months.replay import compare_records
from tests.integration.test_scale_out import dask_cluster  # noqa: F401  (the module's cluster)

pytestmark = pytest.mark.usefixtures("prefect_server")

#: Fast models: the data path is what differs between the two runs, not the training.
FAST = {"models": ["lr"], "folds": 2}


def _month(path: Path, period: str, rows: int, *, drift: float = 0.0, groups: int = 4) -> Path:
    """A generated month stored out of customer order (as a warehouse export may be)."""
    frame = generate_snapshot(period, rows=rows, drift=drift, scenario="price_rise")
    frame = frame.sample(frac=1.0, random_state=7)
    frame.to_parquet(path, index=False, row_group_size=-(-rows // groups))
    return path


def _months_in(
    home: Path, monkeypatch: pytest.MonkeyPatch, *, stream: bool, months: list[tuple[str, Path]]
) -> list[DecisionRecord]:
    """The retrain over `months` in order, in a fresh state directory, streamed or loaded."""
    monkeypatch.setenv("CHURN_RETRAIN_HOME", str(home))
    monkeypatch.setenv("CHURN_RETRAIN_STREAM_MONTHS", str(stream).lower())
    monkeypatch.setenv("CHURN_RETRAIN_MAX_SNAPSHOT_BYTES", str(1024**3))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)  # a run exports its own: a new process's view
    return [
        retrain(RetrainParameters(period=period, data=str(path), **FAST))  # type: ignore[arg-type]
        for period, path in months
    ]


def _same(streamed: DecisionRecord, loaded: DecisionRecord) -> None:
    differences = compare_records(loaded.model_dump(mode="json"), streamed.model_dump(mode="json"))
    assert differences == [], [d.model_dump() for d in differences]
    # Each run took the path it was asked to: the streamed one never loaded the month.
    assert "load" not in streamed.stage_seconds and "drift" in streamed.stage_seconds
    assert "load" in loaded.stage_seconds


def test_100k_months_streamed_decide_as_loaded_with_a_champion_to_keep_out(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    months = [
        ("2026-01", _month(tmp_path / "jan.parquet", "2026-01", 100_000)),
        ("2026-02", _month(tmp_path / "feb.parquet", "2026-02", 100_000, drift=0.5)),
    ]
    streamed = _months_in(state_home / "streamed", monkeypatch, stream=True, months=months)
    loaded = _months_in(state_home / "loaded", monkeypatch, stream=False, months=months)
    for s, m in zip(streamed, loaded, strict=True):
        _same(s, m)
    first, second = streamed
    assert first.decision.verdict == "promote-first" and first.rows == 100_000
    # The second month: the champion's customers kept out of the holdout, drift measured.
    assert second.holdout_split is not None and second.holdout_split.excluded_rows > 0
    assert second.training_sample is not None and second.training_sample.sampled
    assert "against champion v1" in second.drift and "PSI 0.000" not in second.drift


def test_a_2m_month_streamed_decides_as_loaded(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    month = [("2026-01", _month(tmp_path / "big.parquet", "2026-01", 2_000_000))]
    (streamed,) = _months_in(state_home / "streamed", monkeypatch, stream=True, months=month)
    (loaded,) = _months_in(state_home / "loaded", monkeypatch, stream=False, months=month)
    _same(streamed, loaded)
    assert streamed.rows == 2_000_000
    assert streamed.holdout_split is not None and streamed.training_sample is not None
    assert streamed.holdout_split.holdout_rows < 2_000_000 // 5  # capped by the rule
    assert streamed.training_sample.rows_used == streamed.training_sample.max_rows


def test_on_a_dask_cluster_both_passes_run_a_task_per_row_group(
    dask_cluster: object,  # noqa: F811
    state_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect_dask import DaskTaskRunner

    from tests.integration.test_scale_out import _task_run_names

    month = [("2026-01", _month(tmp_path / "m.parquet", "2026-01", 20_000, groups=3))]
    (serial,) = _months_in(state_home / "serial", monkeypatch, stream=True, months=month)
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    on_dask = retrain.with_options(task_runner=DaskTaskRunner(address=address))
    monkeypatch.setenv("CHURN_RETRAIN_HOME", str(state_home / "dask"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    record = on_dask(RetrainParameters(period="2026-01", data=str(month[0][1]), **FAST))  # type: ignore[arg-type]
    # The same month, split the same; the model trained on a worker may differ in the last bits.
    assert record.data_digest == serial.data_digest and record.rows == serial.rows == 20_000
    assert record.validation == serial.validation and record.drift == serial.drift
    assert record.holdout_split == serial.holdout_split
    assert record.training_sample == serial.training_sample
    assert record.decision.verdict == serial.decision.verdict == "promote-first"
    assert record.challenger.holdout == pytest.approx(serial.challenger.holdout, rel=1e-9)
    names = _task_run_names(record.flow_run_id)
    assert sum(n.startswith("validate-partition") for n in names) == 3, names
    assert sum(n.startswith("take-rows") for n in names) == 3, names
