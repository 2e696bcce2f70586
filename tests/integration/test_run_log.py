"""The flow run's log, as the Prefect UI shows it: it tells the story, and only ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.report.summary import summary
from tests.servers import flow_run_logs

FAST = {"models": ["lr"], "folds": 2, "generated_rows": 1500, "seed": 5, "data": "generated"}


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
        logs = flow_run_logs(state.state_details.flow_run_id)
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
    logs = flow_run_logs(state.state_details.flow_run_id)
    [logged] = [line for line in logs if line.startswith("churn-retrain 2026-04: ")]
    assert logged == summary(record)
    # Only the engine's closing line comes after it.
    after = logs[logs.index(logged) + 1 :]
    assert [line for line in after if not line.startswith("Finished in state")] == [], after
