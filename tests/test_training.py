"""Training guards and the size-adapted plan: no PyCaret needed for these."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.errors import TrainingFailed
from tasks.training.plan import LARGE_MONTH_ROWS, SCALABLE_MODELS, check_trainable, plan_training


def _frame(rows: int, churn: list[str] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "SeniorCitizen": rng.integers(0, 2, rows),
            "tenure": rng.integers(0, 73, rows),
            "MonthlyCharges": rng.uniform(18, 118, rows),
            "TotalCharges": rng.uniform(18, 8000, rows),
            "Churn": churn or (["Yes", "No", "No", "No"] * rows)[:rows],
        }
    )


def test_small_months_train_what_was_asked() -> None:
    plan = plan_training(["lr", "gbc", "rf"], 10, 5_000)
    assert plan.models == ("lr", "gbc", "rf") and plan.folds == 10 and plan.notes == ()
    assert plan_training(["all"], 5, 5_000).models is None  # the whole zoo


def test_large_months_keep_scalable_models_and_fewer_folds() -> None:
    plan = plan_training(["lr", "gbc", "lightgbm", "rf"], 10, LARGE_MONTH_ROWS)
    assert plan.models == ("lr", "lightgbm") and plan.folds == 3
    assert any("3 folds" in n for n in plan.notes)
    assert set(plan_training(["all"], 5, 700_000).models or ()) <= SCALABLE_MODELS
    assert plan_training(["rf"], 3, 700_000).models == ("lr", "lightgbm")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame(50), "only 50 training rows"),
        (_frame(200, ["No"] * 200), "one class only"),
        (_frame(200, ["Yes"] * 3 + ["No"] * 197), "'Yes' has 3 rows, fewer than 5 folds"),
        (_frame(200).assign(TotalCharges=np.nan), "'TotalCharges' is entirely missing"),
        (_frame(200).assign(tenure="12"), "'tenure' is not numeric"),
    ],
)
def test_untrainable_data_is_refused_before_pycaret(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(TrainingFailed, match=message):
        check_trainable(frame, folds=5)
