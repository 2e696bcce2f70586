"""End to end on the real IBM Telco CSV (../shared/data): the quality bar of the default run."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def test_real_telco_retrain_meets_the_quality_bar(state_home: Path, real_csv: Path) -> None:
    record = retrain(RetrainParameters(period="2026-01", data=str(real_csv)))
    assert record.rows == 7043 and record.holdout_rows == 1409
    assert record.validation.startswith("passed")
    assert record.verdict == "promote-first" and record.champion_version_after == "1"
    assert record.challenger.holdout["roc_auc"] >= 0.84
    assert record.challenger.cv["roc_auc"] >= 0.845  # issue #7's bar, seed 42
    assert record.data_source == str(real_csv)
