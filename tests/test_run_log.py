"""The flow run's log, as the Prefect UI shows it: it tells the story, and only ours."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import numpy as np
import pytest

FAST = {"models": ["lr"], "folds": 2, "generated_rows": 1500, "seed": 5, "data": "generated"}


def _flow_run_logs(flow_run_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        records = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            sort=LogSort.TIMESTAMP_ASC,
        )
    return [record.message for record in records]


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("quiet", [True, False], ids=["kept out", "as LightGBM prints it"])
def test_lightgbm_chatter_stays_out_of_the_flow_run_log(quiet: bool) -> None:
    """LightGBM prints its C++ log; a flow's `log_prints` would make it half the run's log."""
    import lightgbm
    from prefect import flow

    from tasks.training.model import keep_pycaret_quiet

    @flow(log_prints=True)
    def fit() -> None:
        rows = np.random.default_rng(0).random((300, 3))
        lightgbm.LGBMClassifier(n_estimators=5).fit(rows, (rows[:, 0] > 0.5).astype(int))
        print("fitted")

    if quiet:
        keep_pycaret_quiet()
    else:  # the control: LightGBM's own logger, which prints
        lightgbm.register_logger(_Printer())
    try:
        state = fit(return_state=True)
        logs = _flow_run_logs(state.state_details.flow_run_id)
    finally:
        keep_pycaret_quiet()  # leave LightGBM quiet for later tests
    assert "fitted" in logs
    chatter = [line for line in logs if "[LightGBM]" in line]
    assert (chatter == []) is quiet, chatter


class _Printer:
    """LightGBM's default: print info and warnings."""

    def info(self, message: str) -> None:
        print(message)

    def warning(self, message: str) -> None:
        print(message)


@pytest.mark.usefixtures("prefect_server")
def test_a_retrain_log_ends_with_the_summary_the_command_line_prints(state_home: Path) -> None:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    state = retrain(RetrainParameters(period="2026-04", **FAST), return_state=True)
    record = state.result()
    logs = _flow_run_logs(state.state_details.flow_run_id)
    [summary] = [line for line in logs if line.startswith("churn-retrain 2026-04: ")]
    assert summary == record.text()
    # Only the engine's closing line comes after it.
    after = logs[logs.index(summary) + 1 :]
    assert [line for line in after if not line.startswith("Finished in state")] == [], after
