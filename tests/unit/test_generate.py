"""Tests for the synthetic snapshot generator: shape, realism, determinism, continuity, drift."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tasks.data.generate import generate_snapshot
from tasks.data.request import DRIFT_SCENARIOS
from tasks.data.schema import (
    CATEGORICAL_DOMAINS,
    COLUMNS,
    FEATURES,
    FLOAT_COLUMNS,
    ID_COLUMN,
    INTEGER_COLUMNS,
    STRING_COLUMNS,
    TARGET,
)

ADDONS = (
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)


@pytest.fixture(scope="module")
def snapshot() -> pd.DataFrame:
    return generate_snapshot("2026-01", seed=42)


def _churn_rate(frame: pd.DataFrame) -> float:
    return float((frame[TARGET] == "Yes").mean())


def _holdout_auc(frame: pd.DataFrame) -> float:
    """Holdout ROC-AUC of a plain one-hot logistic regression, as a baseline model would get."""
    features = frame[list(FEATURES)].assign(TotalCharges=frame["TotalCharges"].fillna(0.0))
    target = (frame[TARGET] == "Yes").astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.2, stratify=target, random_state=0
    )
    numeric = [*INTEGER_COLUMNS, *FLOAT_COLUMNS]
    model = make_pipeline(
        ColumnTransformer(
            [
                ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_DOMAINS)),
                ("numeric", StandardScaler(), numeric),
            ]
        ),
        LogisticRegression(max_iter=2000),
    )
    model.fit(x_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


# --- shape and domains ---------------------------------------------------------------------


def test_columns_and_dtypes_match_the_schema(snapshot: pd.DataFrame) -> None:
    assert list(snapshot.columns) == list(COLUMNS)
    assert len(snapshot) == 7043
    for column in STRING_COLUMNS:
        assert snapshot[column].dtype == object, column
        assert snapshot[column].map(type).eq(str).all(), column
    for column in INTEGER_COLUMNS:
        assert snapshot[column].dtype == np.int64, column
    for column in FLOAT_COLUMNS:
        assert snapshot[column].dtype == np.float64, column


def test_categorical_columns_use_exactly_the_schema_domains(snapshot: pd.DataFrame) -> None:
    for column, domain in CATEGORICAL_DOMAINS.items():
        assert set(snapshot[column].unique()) == set(domain), column
    assert set(snapshot[TARGET].unique()) == {"Yes", "No"}
    assert set(snapshot["SeniorCitizen"].unique()) == {0, 1}


def test_numeric_columns_stay_in_the_public_ranges(snapshot: pd.DataFrame) -> None:
    assert snapshot["tenure"].between(0, 72).all()
    assert snapshot["tenure"].max() == 72
    charges = snapshot["MonthlyCharges"]
    assert charges.between(18.25, 118.75).all()
    assert np.allclose(charges, charges.round(2))
    assert charges[snapshot["InternetService"] == "No"].between(18.25, 27.0).all()


def test_customer_ids_are_unique_and_shaped_like_the_public_ones(snapshot: pd.DataFrame) -> None:
    ids = snapshot[ID_COLUMN]
    assert ids.is_unique
    assert ids.map(lambda value: re.fullmatch(r"\d{4}-[A-Z]{5}", value) is not None).all()
    big = generate_snapshot("2026-01", seed=42, rows=200_000)
    assert big[ID_COLUMN].is_unique


# --- consistency rules of the public data ---------------------------------------------------


def test_no_phone_service_exactly_when_multiple_lines_says_so(snapshot: pd.DataFrame) -> None:
    no_phone = snapshot["PhoneService"] == "No"
    assert no_phone.any()
    assert (no_phone == (snapshot["MultipleLines"] == "No phone service")).all()
    # As in the public file, only DSL customers go without phone service.
    assert (snapshot.loc[no_phone, "InternetService"] == "DSL").all()


def test_no_internet_exactly_when_every_add_on_says_so(snapshot: pd.DataFrame) -> None:
    no_internet = snapshot["InternetService"] == "No"
    assert no_internet.any()
    for column in ADDONS:
        assert (no_internet == (snapshot[column] == "No internet service")).all(), column


def test_monthly_charges_follow_the_services_taken(snapshot: pd.DataFrame) -> None:
    by_internet = snapshot.groupby("InternetService")["MonthlyCharges"].mean()
    assert by_internet["Fiber optic"] > by_internet["DSL"] + 15 > by_internet["No"] + 15
    assert 19.0 < by_internet["No"] < 26.0
    dsl = snapshot[snapshot["InternetService"] == "DSL"]
    for column in ADDONS:
        by_addon = dsl.groupby(column)["MonthlyCharges"].mean()
        assert by_addon["Yes"] > by_addon["No"] + 2, column


def test_total_charges_are_blank_exactly_in_month_zero(snapshot: pd.DataFrame) -> None:
    month_zero = snapshot["tenure"] == 0
    assert month_zero.any()
    assert (snapshot["TotalCharges"].isna() == month_zero).all()
    billed = snapshot[~month_zero]
    assert (billed["TotalCharges"] >= billed["MonthlyCharges"]).all()
    ratio = billed["TotalCharges"] / (billed["tenure"] * billed["MonthlyCharges"])
    assert 0.97 < ratio.median() < 1.03
    assert 0.01 < ratio.std() < 0.1


# --- realism --------------------------------------------------------------------------------


def test_marginal_mixes_are_close_to_the_public_file(snapshot: pd.DataFrame) -> None:
    contract = snapshot["Contract"].value_counts(normalize=True)
    internet = snapshot["InternetService"].value_counts(normalize=True)
    assert contract["Month-to-month"] == pytest.approx(0.55, abs=0.04)
    assert contract["Two year"] == pytest.approx(0.24, abs=0.04)
    assert internet["Fiber optic"] == pytest.approx(0.44, abs=0.03)
    assert internet["DSL"] == pytest.approx(0.34, abs=0.03)
    assert (snapshot["PaymentMethod"] == "Electronic check").mean() == pytest.approx(0.34, abs=0.03)
    assert snapshot["SeniorCitizen"].mean() == pytest.approx(0.16, abs=0.02)
    assert snapshot["tenure"].mean() == pytest.approx(32, abs=3)
    # U-ish: many recent customers and a pile at the cap, fewer in the middle.
    assert (snapshot["tenure"] <= 6).mean() > 0.12
    assert (snapshot["tenure"] == 72).mean() > 0.03


@pytest.mark.parametrize(("period", "seed"), [("2026-01", 42), ("2021-07", 7), ("2030-12", 1)])
def test_churn_rate_is_near_the_public_file(period: str, seed: int) -> None:
    assert 0.23 <= _churn_rate(generate_snapshot(period, seed=seed)) <= 0.29


@pytest.mark.parametrize("seed", [42, 3])
def test_logistic_regression_reaches_a_realistic_auc(seed: int) -> None:
    # A 1,409-row holdout moves the AUC by about +-0.015, hence the wide band.
    assert 0.80 <= _holdout_auc(generate_snapshot("2026-01", seed=seed)) <= 0.88


def test_labels_are_not_trivially_separable() -> None:
    # A 6,000-row holdout pins the AUC to about +-0.01: near the public file's 0.845, not above.
    assert 0.825 <= _holdout_auc(generate_snapshot("2026-01", seed=11, rows=30_000)) <= 0.865


def test_churn_rises_with_the_known_risk_factors() -> None:
    frame = generate_snapshot("2026-01", seed=42, rows=30_000)
    churned = frame[TARGET] == "Yes"

    def rate(mask: pd.Series) -> float:
        return float(churned[mask].mean())

    assert rate(frame["Contract"] == "Month-to-month") > 3 * rate(frame["Contract"] == "Two year")
    assert rate(frame["tenure"] <= 6) > 3 * rate(frame["tenure"] >= 60)
    assert rate(frame["InternetService"] == "Fiber optic") > rate(frame["InternetService"] == "DSL")
    assert rate(frame["PaymentMethod"] == "Electronic check") > rate(
        frame["PaymentMethod"] == "Mailed check"
    )
    assert rate(frame["SeniorCitizen"] == 1) > rate(frame["SeniorCitizen"] == 0)
    assert rate(frame["MonthlyCharges"] > 90) > rate(frame["MonthlyCharges"] < 40)


# --- determinism and continuity -------------------------------------------------------------


def test_same_arguments_give_identical_frames(snapshot: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_snapshot("2026-01", seed=42), snapshot)
    drifted = {"seed": 5, "rows": 500, "drift": 0.7, "scenario": "price_rise"}
    pd.testing.assert_frame_equal(
        generate_snapshot("2027-03", **drifted), generate_snapshot("2027-03", **drifted)
    )


def test_a_different_seed_gives_a_different_base(snapshot: pd.DataFrame) -> None:
    other = generate_snapshot("2026-01", seed=43)
    assert not set(other[ID_COLUMN]) & set(snapshot[ID_COLUMN])
    assert not other[list(FEATURES)].equals(snapshot[list(FEATURES)])


def test_consecutive_months_share_most_customers(snapshot: pd.DataFrame) -> None:
    following = generate_snapshot("2026-02", seed=42)
    shared = snapshot.merge(following, on=ID_COLUMN, suffixes=("_jan", "_feb"))
    assert len(shared) >= 0.9 * len(snapshot)
    assert len(shared) < len(snapshot)  # some turnover happens
    grew = shared["tenure_feb"] == shared["tenure_jan"] + 1
    capped = (shared["tenure_jan"] == 72) & (shared["tenure_feb"] == 72)
    assert (grew | capped).all()
    for column in ("gender", "SeniorCitizen", "Partner", "InternetService", "PaymentMethod"):
        assert (shared[f"{column}_jan"] == shared[f"{column}_feb"]).mean() > 0.97, column
    assert (shared["gender_jan"] == shared["gender_feb"]).all()
    # Labels are drawn afresh each month, not carried over with the customer.
    assert (shared[f"{TARGET}_jan"] != shared[f"{TARGET}_feb"]).mean() > 0.1


def test_a_year_later_most_customers_are_still_there(snapshot: pd.DataFrame) -> None:
    later = generate_snapshot("2027-01", seed=42)
    shared = snapshot.merge(later, on=ID_COLUMN, suffixes=("_then", "_now"))
    assert 0.5 < len(shared) / len(snapshot) < 0.9
    assert (shared["tenure_now"] <= shared["tenure_then"] + 12).all()
    assert (shared["tenure_now"] >= shared["tenure_then"]).all()


def test_fewer_rows_give_the_first_customers_of_the_larger_snapshot(
    snapshot: pd.DataFrame,
) -> None:
    small = generate_snapshot("2026-01", seed=42, rows=100)
    pd.testing.assert_frame_equal(small, snapshot.iloc[:100])
    assert len(generate_snapshot("2026-01", rows=1)) == 1


# --- drift ----------------------------------------------------------------------------------


# Equality checks use 1,000 rows: assert_frame_equal on object columns is slow.
@pytest.mark.parametrize("scenario", DRIFT_SCENARIOS)
def test_zero_drift_is_no_drift(scenario: str) -> None:
    pd.testing.assert_frame_equal(
        generate_snapshot("2026-01", seed=42, rows=1000, drift=0.0, scenario=scenario),
        generate_snapshot("2026-01", seed=42, rows=1000),
    )


def test_scenario_none_ignores_drift() -> None:
    pd.testing.assert_frame_equal(
        generate_snapshot("2026-01", seed=42, rows=1000, drift=1.0, scenario="none"),
        generate_snapshot("2026-01", seed=42, rows=1000),
    )


def test_price_rise_raises_charges_and_churn(snapshot: pd.DataFrame) -> None:
    risen = generate_snapshot("2026-01", seed=42, drift=1.0, scenario="price_rise")
    half = generate_snapshot("2026-01", seed=42, drift=0.5, scenario="price_rise")
    ratio = risen["MonthlyCharges"].mean() / snapshot["MonthlyCharges"].mean()
    assert ratio == pytest.approx(1.15, abs=0.01)
    assert (
        snapshot["MonthlyCharges"].mean()
        < half["MonthlyCharges"].mean()
        < risen["MonthlyCharges"].mean()
    )
    assert _churn_rate(risen) > _churn_rate(snapshot) + 0.03
    # Only prices move: the customers and their services stay the same.
    assert (risen["InternetService"] == snapshot["InternetService"]).all()


def test_fibre_launch_raises_fibre_share_and_fibre_churn(snapshot: pd.DataFrame) -> None:
    launched = generate_snapshot("2026-01", seed=42, drift=1.0, scenario="fibre_launch")

    def fibre(frame: pd.DataFrame) -> pd.Series:
        return frame["InternetService"] == "Fiber optic"

    assert fibre(launched).mean() > fibre(snapshot).mean() + 0.10
    assert _churn_rate(launched[fibre(launched)]) > _churn_rate(snapshot[fibre(snapshot)]) + 0.02
    assert _churn_rate(launched) > _churn_rate(snapshot) + 0.02
    assert (launched[ID_COLUMN] == snapshot[ID_COLUMN]).all()


# --- invalid input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "period", ["2026-13", "2026-00", "26-01", "", "2026-1", "2026/01", "1999-12"]
)
def test_a_bad_period_is_rejected(period: str) -> None:
    with pytest.raises(ValueError, match="period"):
        generate_snapshot(period)


@pytest.mark.parametrize("drift", [-0.1, 1.01, math.nan, math.inf])
def test_drift_outside_zero_to_one_is_rejected(drift: float) -> None:
    with pytest.raises(ValueError, match="drift must be between 0 and 1"):
        generate_snapshot("2026-01", drift=drift, scenario="price_rise")


def test_an_unknown_scenario_is_rejected_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown drift scenario 'tariff'.*'price_rise'"):
        generate_snapshot("2026-01", drift=0.5, scenario="tariff")


@pytest.mark.parametrize("rows", [0, -5])
def test_fewer_than_one_row_is_rejected(rows: int) -> None:
    with pytest.raises(ValueError, match="rows must be between 1"):
        generate_snapshot("2026-01", rows=rows)
