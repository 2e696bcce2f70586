"""The model's input features: derived columns (version 2), and older models keep their own."""

from __future__ import annotations

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
