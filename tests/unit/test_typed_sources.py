"""Typed sources without servers: the guards for Parquet and query results, the configured
location, and a property: storage order and format never change the snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.data.configured import describe_configured, parse_configured
from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest, SourceOptions
from tasks.data.source import locate
from tasks.data.typed import check_typed_frame
from tasks.errors import DataSourceMisconfigured, SnapshotRejected

PERIOD = "2026-03"


@pytest.fixture(scope="module")
def month() -> pd.DataFrame:
    return generate_snapshot(PERIOD, rows=600, seed=5)


def _check(frame: pd.DataFrame, period_column: str | None = "period") -> pd.DataFrame:
    return check_typed_frame(
        frame, source="db://x", period=PERIOD, period_column=period_column, what="query result"
    )


def test_database_case_folded_names_and_narrow_types_become_the_schema(month: pd.DataFrame) -> None:
    folded = month.rename(columns=str.lower).astype({"seniorcitizen": "int32", "tenure": "int16"})
    folded["contract"] = folded["contract"].astype("category")
    folded["period"] = PERIOD
    checked = _check(folded)
    assert list(checked.columns) == list(month.columns)
    assert checked.dtypes.to_dict() == month.dtypes.to_dict()


def test_typed_guards_name_the_column_and_the_problem(month: pd.DataFrame) -> None:
    with pytest.raises(
        SnapshotRejected,
        match=r"^Snapshot db://x: the query result has duplicated columns: tenure$",
    ):
        _check(pd.concat([month, month[["tenure"]]], axis=1))
    with pytest.raises(SnapshotRejected, match=r"lacks the columns: gender, Churn$"):
        _check(month.drop(columns=["gender", "Churn"]))
    with pytest.raises(SnapshotRejected, match="no rows for 2026-03"):
        _check(month.head(0))
    with pytest.raises(
        SnapshotRejected, match="column gender has type int64 in the query result, expected text"
    ):
        _check(month.assign(gender=1))
    with pytest.raises(SnapshotRejected, match="column TotalCharges has type datetime64"):
        _check(month.assign(TotalCharges=pd.Timestamp("2026-01-01")))
    with pytest.raises(
        SnapshotRejected,
        match=r"600 rows of another period than 2026-03 in column period \(2026-02\)",
    ):
        _check(month.assign(period="2026-02"))
    with pytest.raises(SnapshotRejected, match=r"column Contract has type object .* expected text"):
        _check(month.assign(Contract=[b"x"] * len(month)))


def test_text_in_a_numeric_column_is_left_for_the_suite_to_count(month: pd.DataFrame) -> None:
    messy = month.assign(tenure=month["tenure"].astype(object))
    messy.loc[:9, "tenure"] = "n/a"
    checked = _check(messy)
    assert checked["tenure"].dtype == object  # the suite reports the 10 values, as for CSV


def test_the_configured_location_is_checked_like_a_parameter() -> None:
    assert parse_configured("s3://lake/{period}.parquet") == (
        "s3://lake/{period}.parquet",
        SourceOptions(),
    )
    data, options = parse_configured({"data": "sqlite:///crm.db", "source": {"table": "telco"}})
    assert data == "sqlite:///crm.db" and options.table == "telco"
    with pytest.raises(DataSourceMisconfigured, match="never train on generated rows"):
        parse_configured("generated")
    with pytest.raises(
        DataSourceMisconfigured, match=r"source\.table: String should match pattern"
    ):
        parse_configured({"data": "sqlite:///crm.db", "source": {"table": "telco; DROP TABLE x"}})
    with pytest.raises(DataSourceMisconfigured, match="must hold a location"):
        parse_configured(42)
    shown = describe_configured(
        ("postgresql+psycopg://u:pw@db/crm", SourceOptions(table="t", query="SELECT 1"))
    )
    assert "pw" not in shown and "db/crm" in shown and "table=t" in shown


def test_no_source_configured_is_an_error_not_generated_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tasks.data.load as load

    monkeypatch.setattr(load, "find_configured_source", lambda: None)
    with pytest.raises(
        DataSourceMisconfigured, match=r"no data source configured.*churn-retrain-data"
    ):
        load_snapshot.fn(SnapshotRequest(None, PERIOD))
    with pytest.raises(DataSourceMisconfigured, match="a table or query needs a database URL"):
        load_snapshot.fn(
            SnapshotRequest("/some/file.csv", PERIOD, options=SourceOptions(table="t"))
        )


@pytest.mark.parametrize(
    ("location", "scheme", "kind"),
    [
        ("/d/2026-03.csv", "file", "csv"),
        ("/d/2026-03.CSV.GZ", "file", "csv.gz"),
        ("s3://lake/m.parquet", "s3", "parquet"),
        ("gs://lake/telco/", "gs", "parquet"),
        ("https://h/m.csv?sig=1", "https", "csv"),
        ("postgresql+psycopg://u@h/db", "postgresql", ""),
        ("sqlite:///crm.db", "sqlite", ""),
        ("file:///d/m.pq", "file", "parquet"),
    ],
)
def test_locations_are_told_apart(location: str, scheme: str, kind: str) -> None:
    where = locate(SnapshotRequest(location, PERIOD), location, SourceOptions())
    assert (where.scheme, where.format) == (scheme, kind)
    if kind:  # a file's format can be forced; a database has none
        forced = SourceOptions(format="csv.gz")
        assert locate(SnapshotRequest(location, PERIOD), location, forced).format == "csv.gz"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.randoms(use_true_random=False), columns=st.permutations(list(range(21))))
def test_storage_order_and_format_never_change_the_snapshot(
    month: pd.DataFrame, tmp_path: Path, order: object, columns: list[int]
) -> None:
    """Rows in any order, columns in any order, CSV or Parquet: one digest, one frame."""
    rows = np.random.default_rng(order.randint(0, 2**31)).permutation(len(month))  # type: ignore[attr-defined]
    shuffled = month.iloc[rows, columns]
    shuffled.to_parquet(tmp_path / "m.parquet", index=False)
    month.to_csv(tmp_path / "m.csv", index=False)
    parquet = load_snapshot.fn(SnapshotRequest(str(tmp_path / "m.parquet"), PERIOD))
    csv = load_snapshot.fn(SnapshotRequest(str(tmp_path / "m.csv"), PERIOD))
    assert parquet.digest == csv.digest
    pd.testing.assert_frame_equal(parquet.frame[csv.frame.columns], csv.frame)
