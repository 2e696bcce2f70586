"""Drift against the champion's reference profile: PSI per column, thresholds as data."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tasks.data.generate import generate_snapshot
from tasks.decision.holdout import split_holdout
from tasks.errors import SnapshotRejected
from tasks.gate.drift import (
    Reference,
    check_drift,
    compare_with_profile,
    population_stability,
    profile_frame,
)
from tasks.gate.thresholds import DriftThresholds

ROWS = 1500


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    return generate_snapshot("2026-01", rows=ROWS)


@pytest.fixture(scope="module")
def reference(january: pd.DataFrame) -> Reference:
    """As the flow does it: the profile of the champion's training split."""
    train, _ = split_holdout(january, fraction=0.2, seed=42)
    return Reference(profile=profile_frame(train), champion_version="1")


def _psi(report_columns: list, column: str) -> float:  # type: ignore[type-arg]
    return next(c.psi for c in report_columns if c.column == column)


def test_psi_of_identical_distributions_is_zero_and_grows_with_the_shift() -> None:
    assert population_stability([0.5, 0.5], [0.5, 0.5]) == 0.0
    small = population_stability([0.5, 0.5], [0.55, 0.45])
    large = population_stability([0.5, 0.5], [0.9, 0.1])
    assert 0 < small < 0.1 < 0.25 < large
    assert population_stability([1.0, 0.0], [0.0, 1.0]) < float("inf")  # empty bins smoothed
    with pytest.raises(ValueError, match="bucket counts differ"):
        population_stability([1.0], [0.5, 0.5])


def test_profile_is_json_with_shares_and_no_rows(january: pd.DataFrame) -> None:
    profile = profile_frame(january)
    text = profile.model_dump_json()
    assert january["customerID"].iloc[0] not in text
    numeric = profile.numeric["MonthlyCharges"]
    assert len(numeric.edges) == 9 and sum(numeric.shares) == pytest.approx(1.0)
    assert set(profile.categorical["Contract"]) == {"Month-to-month", "One year", "Two year"}
    assert sum(profile.categorical["Contract"].values()) == pytest.approx(1.0)
    assert "customerID" not in json.loads(text)["categorical"]


def test_the_same_month_and_the_next_month_pass(
    january: pd.DataFrame, reference: Reference
) -> None:
    for frame in (january, generate_snapshot("2026-02", rows=ROWS)):
        report = check_drift.fn(frame, reference, DriftThresholds(), source="x.csv")
        assert report.status == "ok", report.summary()
        assert max(c.psi for c in report.columns) < 0.05
    assert report.summary().startswith("no drift against champion v1's training data")


def test_price_rise_fails_on_monthly_charges_with_the_figures(reference: Reference) -> None:
    risen = generate_snapshot("2026-02", rows=ROWS, drift=1.0, scenario="price_rise")
    with pytest.raises(
        SnapshotRejected,
        match=r"(?s)2026-02\.csv rejected: drift: 1 of 19 columns past the fail threshold \(PSI.*"
        r"MonthlyCharges: PSI \d\.\d{3} >= fail threshold 0\.25",
    ) as caught:
        check_drift.fn(risen, reference, DriftThresholds(), source="2026-02.csv")
    report = caught.value.report  # type: ignore[attr-defined]
    assert _psi(report.columns, "MonthlyCharges") > 0.5
    assert [f.column for f in report.failures] == ["MonthlyCharges"]
    assert _psi(report.columns, "Contract") < 0.1


def test_thresholds_are_data(reference: Reference) -> None:
    fibre = generate_snapshot("2026-02", rows=ROWS, drift=1.0, scenario="fibre_launch")
    default = check_drift.fn(fibre, reference, DriftThresholds(), source="f")
    assert default.status == "ok" and _psi(default.columns, "InternetService") > 0.05
    strict = DriftThresholds(warn=0.02, fail=0.05)
    with pytest.raises(SnapshotRejected, match="InternetService: PSI"):
        check_drift.fn(fibre, reference, strict, source="f")
    warned = check_drift.fn(fibre, reference, DriftThresholds(warn=0.05, fail=1.0), source="f")
    assert warned.status == "warn" and warned.success
    assert "InternetService: PSI" in warned.summary()
    with pytest.raises(ValueError, match="below warn threshold"):
        DriftThresholds(warn=0.3, fail=0.2)


def test_without_a_champion_drift_is_skipped_and_says_why(january: pd.DataFrame) -> None:
    report = check_drift.fn(
        january, Reference(reason="no champion yet"), DriftThresholds(), source="x"
    )
    assert report.status == "skipped" and report.summary() == "skipped: no champion yet"
    off = check_drift.fn(
        january, Reference(reason="unused"), DriftThresholds(enabled=False), source="x"
    )
    assert off.summary() == "skipped: drift check disabled"


def test_unknown_and_missing_values_get_their_own_buckets(reference: Reference) -> None:
    frame = generate_snapshot("2026-02", rows=ROWS)
    frame.loc[: ROWS // 2, "PaymentMethod"] = "SECRET-Crypto"
    frame.loc[: ROWS // 2, "TotalCharges"] = float("nan")
    assert reference.profile is not None
    report = compare_with_profile(frame, reference.profile, DriftThresholds(), source="x")
    assert _psi(report.columns, "PaymentMethod") > 1 and _psi(report.columns, "TotalCharges") > 1
    assert "SECRET" not in json.dumps(report.to_dict())


@pytest.mark.usefixtures("state_home")
def test_the_champion_lookup_connects_like_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `connect_tracking` (URIs and credentials), never setting URIs by itself."""
    import tasks.tracking.connection
    from tasks.gate.drift import find_reference_profile
    from tasks.settings import Settings

    connected: list[Settings] = []

    class Connected(Exception):
        pass

    def connect(settings: Settings) -> None:
        connected.append(settings)
        raise Connected

    monkeypatch.setattr(tasks.tracking.connection, "connect_tracking", connect)
    settings = Settings(tracking_uri="http://127.0.0.1:9", tracking_username="bot")
    with pytest.raises(Connected):
        find_reference_profile.fn(settings, "telco-churn")
    assert connected == [settings]
    # A local store that does not exist yet: nothing to connect to, no store created.
    local = Settings()
    assert (
        find_reference_profile.fn(local, "telco-churn").reason
        == "no champion yet (no MLflow store)"
    )
    assert connected == [settings] and not (local.home / "mlflow.db").exists()
