"""The snapshot gate: the real Telco CSV passes; each kind of bad file fails with a clear message."""

from __future__ import annotations

import gc
import json
import logging
import socket
import weakref
from pathlib import Path

import pandas as pd
import pytest

from tasks.errors import SnapshotRejected
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
    check_snapshot,
    load_suite,
    validate_snapshot,
)

CSV = Path(__file__).resolve().parents[3] / "shared/data/telco_customer_churn.csv"
SUITE_SIZE = len(json.loads(DEFAULT_SUITE_PATH.read_text())["expectations"])


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    """The public CSV as the loader hands it over: blank TotalCharges become NaN."""
    frame = pd.read_csv(CSV)
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")
    return frame


@pytest.fixture
def snapshot(telco: pd.DataFrame) -> pd.DataFrame:
    """A copy each test may break."""
    return telco.copy()


def rejected(frame: pd.DataFrame, source: str = "test.csv", **kwargs: Path) -> SnapshotRejected:
    """Run the task body and return the rejection it must raise."""
    with pytest.raises(SnapshotRejected) as caught:
        validate_snapshot.fn(frame, source=source, **kwargs)
    return caught.value


# --- passes ----------------------------------------------------------------------------------


def test_real_csv_passes_every_expectation(telco: pd.DataFrame) -> None:
    report = validate_snapshot.fn(telco, source=str(CSV))
    assert report.success
    assert report.evaluated == SUITE_SIZE
    assert report.summary() == f"passed {SUITE_SIZE}/{SUITE_SIZE} expectations on 7,043 rows"


def test_column_order_does_not_matter(telco: pd.DataFrame) -> None:
    shuffled = telco[telco.columns.to_series().sample(frac=1, random_state=7).tolist()]
    assert list(shuffled.columns) != list(telco.columns)
    assert check_snapshot(shuffled, source="shuffled").success


def test_nullable_integer_columns_pass(snapshot: pd.DataFrame) -> None:
    nullable = snapshot.astype({"tenure": "Int64", "SeniorCitizen": "Int64"})
    assert check_snapshot(nullable, source="Int64").success


def test_suite_has_notes_on_every_expectation() -> None:
    suite = json.loads(DEFAULT_SUITE_PATH.read_text())
    assert suite["name"] == "telco_snapshot" and suite["meta"]["description"]
    assert all(e["meta"]["notes"] for e in suite["expectations"])
    assert len(load_suite().expectations) == SUITE_SIZE


# --- failures, with the message a person reads -------------------------------------------------


def test_missing_column_is_reported_as_missing(snapshot: pd.DataFrame) -> None:
    error = rejected(snapshot.drop(columns=["Contract"]), source="data/2026-11.csv")
    assert str(error).startswith("Snapshot data/2026-11.csv rejected: 3 of ")
    assert "\n  (table): missing column Contract\n" in str(error)
    assert "\n  Contract: column is missing (2 checks)" in str(error)
    assert isinstance(error.report, ValidationReport)  # type: ignore[attr-defined]
    assert {f.problem for f in error.report.by_column()["Contract"]} == {"column is missing"}  # type: ignore[attr-defined]


def test_renamed_column_is_missing_plus_one_unexpected(snapshot: pd.DataFrame) -> None:
    with pytest.raises(
        SnapshotRejected,
        match=r"\(table\): missing column tenure; 1 unexpected column \('Tenure' looks like tenure\)",
    ) as caught:
        validate_snapshot.fn(snapshot.rename(columns={"tenure": "Tenure"}), source="renamed")
    # The cross-column rule filters on tenure, so it cannot run either.
    assert "TotalCharges: not evaluated: tenure is missing" in str(caught.value)


def test_unknown_headers_are_named_unless_the_header_row_is_data(snapshot: pd.DataFrame) -> None:
    """A header row's names are not data: an unexpected one is named, so a person knows which
    column to drop or rename (the first five, long names cut). A file without a header row
    turns its first customer into column names: when none of the expected columns is present,
    the row is said to be missing, and nothing of it is quoted."""
    message = str(rejected(snapshot.rename(columns={"Contract": "Plan"}).assign(Region="n")))
    assert "(table): missing column Contract; 2 unexpected columns: 'Plan', 'Region'" in message
    extra = {f"note{i}": 0 for i in range(7)} | {"x" * 60: 0}
    message = str(rejected(snapshot.assign(**extra)))
    assert "8 unexpected columns: 'note0', 'note1', 'note2', 'note3', 'note4' and 3 more" in message
    headerless = snapshot.iloc[1:].set_axis(snapshot.iloc[0].astype(str).tolist(), axis=1)
    first_customer = str(snapshot.iloc[0]["customerID"])
    with pytest.raises(
        SnapshotRejected,
        match=r"\(table\): .*no header row\? none of the 21 expected columns is present",
    ) as caught:
        validate_snapshot.fn(headerless, source="headerless.csv")
    assert first_customer not in str(caught.value)
    assert first_customer not in json.dumps(caught.value.report.to_dict())  # type: ignore[attr-defined]


def test_text_in_a_numeric_column_is_a_type_failure_not_a_crash(snapshot: pd.DataFrame) -> None:
    snapshot["MonthlyCharges"] = snapshot["MonthlyCharges"].astype(object)
    snapshot.loc[[3, 9], "MonthlyCharges"] = "SECRET-29,85"
    error = rejected(snapshot)
    assert "MonthlyCharges: 2 values of wrong type (expected numeric, got object)" in str(error)
    assert "TotalCharges: not evaluated: MonthlyCharges is not numeric (got object)" in str(error)
    assert "SECRET" not in str(error) and "SECRET" not in json.dumps(error.report.to_dict())  # type: ignore[attr-defined]


def test_out_of_range_tenure(snapshot: pd.DataFrame) -> None:
    snapshot.loc[[1, 2, 3], "tenure"] = 99
    with pytest.raises(
        SnapshotRejected, match=r"1 of \d+ checks failed(.|\n)*tenure: 3 values outside \[0, 72\]"
    ):
        validate_snapshot.fn(snapshot, source="tenure")


def test_unknown_category_names_the_domain_not_the_value(
    snapshot: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot.loc[[1, 2], "Contract"] = "Weekly"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(
        SnapshotRejected, match=r"Contract: 2 values outside \{Month-to-month, One year, Two year\}"
    ) as caught:
        validate_snapshot.fn(snapshot, source="contract")
    report = caught.value.report  # type: ignore[attr-defined]
    assert report.failures[0].unexpected_count == 2
    assert "Weekly" not in str(caught.value)
    assert "Weekly" not in json.dumps(report.to_dict())
    assert "Weekly" not in caplog.text


def test_duplicated_customer_id(snapshot: pd.DataFrame) -> None:
    snapshot.loc[5, "customerID"] = snapshot.loc[4, "customerID"]
    error = rejected(snapshot)
    assert "customerID: 2 rows share their value with another row" in str(error)
    assert str(snapshot.loc[4, "customerID"]) not in str(error)


def test_null_in_a_not_null_column(snapshot: pd.DataFrame) -> None:
    snapshot.loc[5, "gender"] = None
    with pytest.raises(SnapshotRejected, match=r"gender: 1 null value \(<0\.1%\)"):
        validate_snapshot.fn(snapshot, source="nulls")


def test_a_few_blank_total_charges_are_allowed_but_not_many(snapshot: pd.DataFrame) -> None:
    snapshot.loc[snapshot.index[:200], "TotalCharges"] = float("nan")
    with pytest.raises(
        SnapshotRejected,
        match=r"TotalCharges: 2\d\d null values \(\d\.\d%\), at most 1\.0% allowed",
    ):
        validate_snapshot.fn(snapshot, source="blanks")


def test_single_class_target(snapshot: pd.DataFrame) -> None:
    snapshot["Churn"] = "No"
    error = rejected(snapshot)
    assert "Churn: {Yes} never occurs (needs all of {No, Yes}); churn rate 0.0% is below" in str(
        error
    )


def test_churn_rate_above_the_band(snapshot: pd.DataFrame) -> None:
    snapshot.loc[snapshot.index[:3000], "Churn"] = "Yes"
    with pytest.raises(
        SnapshotRejected, match=r"Churn: churn rate 5\d\.\d% is above the 50\.0% ceiling"
    ):
        validate_snapshot.fn(snapshot, source="churn")


def test_cross_column_rules(snapshot: pd.DataFrame) -> None:
    paying = snapshot.index[snapshot["tenure"] > 0][:600]
    snapshot.loc[paying, "TotalCharges"] = 1.0
    snapshot.loc[snapshot["InternetService"] == "DSL", "TechSupport"] = "No internet service"
    message = str(rejected(snapshot))
    assert (
        "TotalCharges: 600 rows (8.5%) with TotalCharges < MonthlyCharges where tenure > 0"
        in message
    )
    assert (
        "InternetService: 2,421 values outside {No} where TechSupport == 'No internet service'"
        in message
    )


def test_empty_frame_fails_at_table_level(telco: pd.DataFrame) -> None:
    report = check_snapshot(telco.iloc[:0], source="empty")
    assert not report.success
    assert report.rows == 0
    assert any(f.column is None for f in report.failures)
    assert "(table): 0 rows, expected at least" in report.summary()


def test_gx_exceptions_are_translated_without_their_message(
    telco: pd.DataFrame, tmp_path: Path
) -> None:
    suite = json.loads(DEFAULT_SUITE_PATH.read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "gender", "min_value": 0, "max_value": 1},
            "meta": {"notes": "A rule GX cannot evaluate on text."},
        }
    )
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    report = check_snapshot(telco, source="odd-suite", suite_path=path)
    assert report.evaluated == SUITE_SIZE + 1
    assert [f.problem for f in report.failures] == ["not evaluated: GX raised TypeError"]


def test_validation_writes_nothing_to_the_working_directory(
    telco: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_snapshot(telco.iloc[:300], source="cwd")
    assert list(tmp_path.iterdir()) == []


def test_validation_opens_no_network_connection(
    telco: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert check_snapshot(telco, source="offline").success
    assert attempts == []


def test_frame_is_released_after_validation(telco: pd.DataFrame) -> None:
    # GX's current context would otherwise keep the last snapshot alive.
    frame = telco.iloc[:300].copy()
    ref = weakref.ref(frame)
    check_snapshot(frame, source="release")
    del frame
    gc.collect()
    assert ref() is None


# --- the suite file itself ---------------------------------------------------------------------


def test_empty_suite_is_refused(telco: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"name": "telco_snapshot", "expectations": []}))
    with pytest.raises(ValueError, match=r"empty\.json has no expectations"):
        check_snapshot(telco, source="x", suite_path=path)


def test_missing_suite_is_refused(telco: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.json does not exist"):
        validate_snapshot.fn(telco, source="x", suite_path=tmp_path / "nope.json")


def test_suite_entry_gx_would_drop_silently_is_refused(tmp_path: Path) -> None:
    suite = json.loads(DEFAULT_SUITE_PATH.read_text())
    suite["expectations"].append({"type": "expect_colum_values_to_be_unique", "kwargs": {}})
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(suite))
    with pytest.raises(
        ValueError, match=r"typo\.json: GX accepted \d+ of \d+ .*expect_colum_values"
    ):
        load_suite(path)


def test_unparsable_suite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "telco_snapshot", "expectations": [')
    with pytest.raises(ValueError, match=r"broken\.json is not readable JSON"):
        load_suite(path)


def test_a_type_failure_counts_the_bad_values_not_the_rows(snapshot: pd.DataFrame) -> None:
    """GX counts every row of a column of the wrong dtype; the report counts what is wrong."""
    from tasks.gate.report import failures_by_column

    snapshot["tenure"] = snapshot["tenure"].astype(object)
    snapshot.loc[snapshot.index[:14], "tenure"] = "n/a"
    snapshot.loc[snapshot.index[20], "tenure"] = 1.5
    error = rejected(snapshot)
    assert "tenure: 15 values of wrong type (expected integer, got object)" in str(error)
    [tenure] = [c for c in failures_by_column(error.report.failures) if c.column == "tenure"]  # type: ignore[attr-defined]
    assert tenure.rows == 15 < len(snapshot)
