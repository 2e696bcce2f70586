"""The model's input features: derived columns (version 2), and older models keep their own."""

from __future__ import annotations

import os
import pickle

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from tasks.data.generate import generate_snapshot
from tasks.data.schema import FEATURES
from tasks.training.model import FEATURE_VERSION, ChurnModel, prepare_features


def test_derived_features_from_raw_rows() -> None:
    rows = generate_snapshot("2026-01", rows=500).head(3).copy()
    rows["tenure"] = [0, 1, 24]
    rows["TotalCharges"] = [" ", "50.5", "2400"]  # a first-month blank, as in the public CSV
    rows[["PhoneService", "MultipleLines", "OnlineSecurity"]] = "Yes"
    rows[["OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV"]] = "No"
    rows["StreamingMovies"] = ["Yes", "No", "No internet service"]
    features = prepare_features(rows)
    assert list(features.columns) == [*FEATURES, "log_tenure", "services", "avg_monthly_charge"]
    assert features["log_tenure"].tolist() == pytest.approx(np.log1p([0, 1, 24]).tolist())
    assert features["services"].tolist() == [4.0, 3.0, 3.0]
    # A blank total is a first-month customer's: nothing billed yet at tenure 0.
    assert features["TotalCharges"].tolist() == pytest.approx([0.0, 50.5, 2400.0])
    assert features["avg_monthly_charge"].tolist() == pytest.approx([0.0, 50.5, 100.0])
    assert not features.isna().any().any()  # the pipeline has no imputers


def test_version_1_is_the_raw_columns() -> None:
    rows = generate_snapshot("2026-01", rows=500).head(5)
    assert list(prepare_features(rows, version=1).columns) == list(FEATURES)


class _Recorder:
    """A stand-in pipeline that remembers which columns it was given."""

    def __init__(self) -> None:
        self.columns: list[str] = []

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        self.columns = list(frame.columns)
        return np.full((len(frame), 2), 0.5)


def test_a_model_gets_the_feature_version_it_was_trained_on() -> None:
    rows = generate_snapshot("2026-01", rows=500).head(5)
    new = ChurnModel(_Recorder())
    new.predict_proba(rows)
    assert new.feature_version == FEATURE_VERSION == 2
    assert new.pipeline.columns[-3:] == ["log_tenure", "services", "avg_monthly_charge"]

    old = ChurnModel(_Recorder())
    del old.feature_version  # as unpickled from a model saved before versions existed
    old.predict_proba(rows)
    assert old.pipeline.columns == list(FEATURES)


@pytest.mark.parametrize("blank", [" ", "", None, np.nan])
def test_a_blank_total_in_any_spelling_is_a_first_month(blank: object) -> None:
    rows = generate_snapshot("2026-01", rows=500).head(2).copy()
    rows["tenure"] = [0, 3]
    rows["MonthlyCharges"] = [20.0, 30.0]
    rows["TotalCharges"] = pd.Series([blank, "90"], dtype=object)
    features = prepare_features(rows)
    assert features["TotalCharges"].tolist() == pytest.approx([0.0, 90.0])


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("tenure", "twelve", "column 'tenure' has 1 value\\(s\\) that are not numbers"),
        ("TotalCharges", "n/a", "column 'TotalCharges' has 1 value\\(s\\) that are not numbers"),
        ("MonthlyCharges", {"a": 1}, "column 'MonthlyCharges' has 1 value\\(s\\) that are not"),
        ("tenure", None, "missing values in tenure: only TotalCharges may be blank"),
    ],
)
def test_bad_numbers_are_refused_by_column_never_by_value(
    column: str, value: object, message: str
) -> None:
    rows = generate_snapshot("2026-01", rows=500).head(4).copy()
    rows[column] = rows[column].astype(object)
    rows.at[rows.index[1], column] = value
    with pytest.raises(ValueError, match=message) as error:
        ChurnModel(_Recorder()).predict_proba(rows)
    assert not any(cid in str(error.value) for cid in rows["customerID"])


class _Failing:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raise KeyError(f"quoting the input: {frame.to_dict()}\nsecond line")


def test_pipeline_errors_are_one_line_and_unchained() -> None:
    rows = generate_snapshot("2026-01", rows=500).head(4)
    with pytest.raises(
        ValueError, match="the pipeline could not score the rows: KeyError"
    ) as error:
        ChurnModel(_Failing()).predict_proba(rows)
    assert len(str(error.value)) <= 250 and "\n" not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def _logging_path_now() -> str | None:
    """Rebuilt in the pipeline's place: where PyCaret would log if it were imported now."""
    return os.environ.get("PYCARET_CUSTOM_LOGGING_PATH")


class _SeesLoggingPath:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return _logging_path_now, ()


def test_unpickling_sets_pycarets_logging_path_before_the_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ChurnModel(_SeesLoggingPath(), threshold=0.3)
    monkeypatch.delenv("PYCARET_CUSTOM_LOGGING_PATH", raising=False)
    loaded = pickle.loads(cloudpickle.dumps(model))
    assert loaded.pipeline == os.devnull  # set before the pipeline was rebuilt, not after
    assert vars(loaded) == {**vars(model), "pipeline": os.devnull}  # no marker left behind
