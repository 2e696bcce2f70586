"""Training guards, the size-adapted plan and what the logged model declares: no PyCaret."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest

from tasks.data.schema import FEATURES
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


def test_the_signature_lets_every_raw_row_through_to_the_model() -> None:
    """MLflow enforces a signature before the model runs, quoting the input when it fails."""
    from mlflow.models import validate_schema

    from tasks.tracking.models import input_example, model_signature

    schema = model_signature().inputs
    rows = pd.concat([input_example()] * 3, ignore_index=True).astype(object)
    rows["TotalCharges"] = [" ", "", None, np.nan, "29.85", 1889.5]  # blanks as the CSV has them
    rows.loc[0, "tenure"] = "twelve"  # the model refuses it, with a message naming the column
    validate_schema(rows, schema)
    validate_schema(rows.drop(columns=["customerID", "Contract"]), schema)
    assert schema.input_names() == ["customerID", *FEATURES]


def test_requirements_pin_the_model_packages_and_what_they_need() -> None:
    from tasks.tracking.models import _pip_requirements

    pins = dict(pin.split("==") for pin in _pip_requirements())
    names = {name.lower().replace("_", "-"): v for name, v in pins.items()}
    assert names["scikit-learn"] == version("scikit-learn") and names["mlflow"] == version("mlflow")
    # Indirect dependencies too: a fresh resolver would otherwise pick today's versions.
    for indirect in ("scipy", "joblib", "category-encoders", "threadpoolctl", "python-dateutil"):
        assert names[indirect] == version(indirect), indirect
    assert "churn-retrain" not in names and "pytest" not in names
