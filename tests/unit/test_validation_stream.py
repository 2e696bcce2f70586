"""A month validated in chunks says exactly what the whole-frame run says (`check_snapshot` is
the reference): the same report, the same summary, for any chunk size and wherever the faults
are, including faults across chunk boundaries and IDs repeated in two chunks. The Parquet path
reads batch by batch and gives the report, digest and rejections of `load_snapshot`."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.parameters import ValidateParameters
from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.parse import parse_snapshot
from tasks.data.request import SnapshotRequest, SourceOptions
from tasks.errors import SnapshotRejected
from tasks.gate.chunk_suite import DEFAULT_CHUNK_ROWS, unchunkable_expectations
from tasks.gate.chunks import check_chunks, check_in_chunks, validate_chunk, validate_frame
from tasks.gate.combine import combine
from tasks.gate.drift import compare_with_profile, profile_frame
from tasks.gate.month import MonthRead, validate_streamed
from tasks.gate.stream import parquet_location, validate_parquet
from tasks.gate.suite import (
    DEFAULT_SUITE_PATH,
    ValidationReport,
    check_snapshot,
    validate_snapshot,
)
from tasks.gate.thresholds import DriftThresholds

CSV = Path(__file__).resolve().parents[3] / "shared/data/telco_customer_churn.csv"
ROWS = 7043
PERIOD = "2026-03"

Fault = Callable[[pd.DataFrame, int], None]


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    """The public CSV as the loader types it (blank TotalCharges are NaN)."""
    return parse_snapshot(CSV.read_bytes(), source=str(CSV))


def assert_same(chunked: ValidationReport, whole: ValidationReport) -> None:
    assert chunked.summary() == whole.summary()
    assert chunked == whole  # every failure: column, expectation, problem, count


# --- faults a month can have; each takes the row it starts at --------------------------------


def _unknown_contract(frame: pd.DataFrame, at: int) -> None:
    frame.loc[[at, (at + 3001) % ROWS], "Contract"] = "SECRET-weekly"


def _null_gender(frame: pd.DataFrame, at: int) -> None:
    frame.loc[at : at + 4, "gender"] = None


def _id_in_two_places(frame: pd.DataFrame, at: int) -> None:
    frame.loc[(at + ROWS // 2) % ROWS, "customerID"] = frame.loc[at, "customerID"]


def _tenure_block(frame: pd.DataFrame, at: int) -> None:
    # 120 rows from `at`: across a chunk boundary for most chunk sizes and starts.
    frame.loc[at : at + 119, "tenure"] = 99


def _charges_below_monthly(frame: pd.DataFrame, at: int) -> None:
    # Past the 5% slack of the cross-column rule, in one contiguous block.
    rows = frame.index[at : at + 600]
    frame.loc[rows, "TotalCharges"] = frame.loc[rows, "MonthlyCharges"] - 1


def _addon_without_internet(frame: pd.DataFrame, at: int) -> None:
    without = frame.index[frame["InternetService"] == "No"]
    frame.loc[without[at % 50 : at % 50 + 30], "OnlineSecurity"] = "Yes"


def _churn_everywhere(frame: pd.DataFrame, at: int) -> None:
    # From a quarter of the month at the latest: a shorter tail leaves the rate under the
    # suite's ceiling (at 6,342 of 7,043 rows it was 34%), and the month would pass.
    frame.loc[min(at, len(frame) // 4) :, "Churn"] = "Yes"


def _no_churners(frame: pd.DataFrame, at: int) -> None:
    frame["Churn"] = "No"


def _blank_totals(frame: pd.DataFrame, at: int) -> None:
    frame.loc[at : at + 99, "TotalCharges"] = np.nan  # past the 1% the suite allows


FAULTS: dict[str, Fault] = {
    "unknown contract": _unknown_contract,
    "null gender": _null_gender,
    "id in two places": _id_in_two_places,
    "tenure block": _tenure_block,
    "charges below monthly": _charges_below_monthly,
    "add-on without internet": _addon_without_internet,
    "churn everywhere": _churn_everywhere,
    "no churners": _no_churners,
    "blank totals": _blank_totals,
}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunk_rows=st.integers(min_value=800, max_value=ROWS + 100),
    faults=st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=4, unique=True),
    at=st.integers(min_value=0, max_value=ROWS - 700),
)
def test_chunked_report_equals_the_whole_frame_report(
    telco: pd.DataFrame, chunk_rows: int, faults: list[str], at: int
) -> None:
    frame = telco.copy()
    for name in faults:
        FAULTS[name](frame, at)
    whole = check_snapshot(frame, source="month.csv")
    assert not whole.success
    assert_same(check_in_chunks(frame, source="month.csv", chunk_rows=chunk_rows), whole)
    assert "SECRET" not in json.dumps(whole.to_dict())


@pytest.mark.parametrize("chunk_rows", [1000, 3522, ROWS])
def test_every_fault_at_once_for_several_chunk_sizes(telco: pd.DataFrame, chunk_rows: int) -> None:
    frame = telco.copy()
    for fault in FAULTS.values():
        fault(frame, 3400)  # a boundary of the 1000- and 3522-row chunks lies in most blocks
    whole = check_snapshot(frame, source="all.csv")
    assert len(whole.failures) >= len(FAULTS)
    assert_same(check_in_chunks(frame, source="all.csv", chunk_rows=chunk_rows), whole)


def test_real_csv_passes_in_chunks(telco: pd.DataFrame) -> None:
    report = check_in_chunks(telco, source="telco.csv", chunk_rows=2000)
    assert report.summary() == f"passed 66/66 expectations on {ROWS:,} rows"
    assert_same(report, check_snapshot(telco, source="telco.csv"))


def test_duplicate_id_in_two_chunks_is_found(telco: pd.DataFrame) -> None:
    frame = telco.copy()
    frame.loc[6500, "customerID"] = frame.loc[10, "customerID"]
    report = check_in_chunks(frame, source="dup.csv", chunk_rows=1000)  # chunks 1 and 7
    assert report.summary().splitlines()[1] == (
        "  customerID: 2 rows share their value with another row"
    )
    assert_same(report, check_snapshot(frame, source="dup.csv"))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.drop(columns=["Contract"]), id="missing column"),
        pytest.param(lambda f: f.rename(columns={"tenure": "Tenure"}), id="renamed column"),
        pytest.param(lambda f: f.assign(extra=1), id="unexpected column"),
        pytest.param(lambda f: f.head(150), id="too few rows"),
        pytest.param(lambda f: f.head(0), id="no rows"),
        pytest.param(lambda f: f.set_axis([*f.columns[:-1], "gender"], axis=1), id="dup name"),
        pytest.param(lambda f: f.astype({"tenure": "Int64"}), id="nullable integers"),
    ],
)
def test_table_level_problems(
    telco: pd.DataFrame, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> None:
    frame = change(telco.copy())
    assert_same(
        check_in_chunks(frame, source="t.csv", chunk_rows=2500),
        check_snapshot(frame, source="t.csv"),
    )


def test_a_text_cell_in_one_chunk_makes_the_months_column_text(telco: pd.DataFrame) -> None:
    """Chunks typed one by one: only one chunk holds the text, the month's column is text."""
    frame = telco.copy()
    frame["MonthlyCharges"] = frame["MonthlyCharges"].astype(object)
    frame.loc[6000, "MonthlyCharges"] = "SECRET-29,85"
    whole = check_snapshot(frame, source="text.csv")
    chunks = [frame.iloc[:3000].astype({"MonthlyCharges": "float64"}), frame.iloc[3000:]]
    report = check_chunks(chunks, source="text.csv")
    assert_same(report, whole)
    assert (
        "MonthlyCharges: 1 value of wrong type (expected numeric, got object)" in report.summary()
    )


def test_a_missing_value_in_one_chunk_makes_an_integer_column_float(telco: pd.DataFrame) -> None:
    frame = telco.astype({"tenure": "float64"})
    frame.loc[5000, "tenure"] = np.nan
    chunks = [telco.iloc[:4000], frame.iloc[4000:]]  # int64, then float64
    assert_same(check_chunks(chunks, source="t"), check_snapshot(frame, source="t"))


def test_chunk_results_are_small_picklable_and_hold_no_values(telco: pd.DataFrame) -> None:
    frame = telco.copy()
    frame.loc[3, "Contract"] = "SECRET-weekly"
    result = validate_chunk(frame.iloc[:2000])
    again = pickle.loads(pickle.dumps(result))
    assert again == result
    assert np.array_equal(again.id_hashes["customerID"], result.id_hashes["customerID"])
    shipped = pickle.dumps({**result.__dict__, "id_hashes": {}})
    assert len(shipped) < 20_000 and b"SECRET" not in shipped
    assert result.id_hashes["customerID"].dtype == np.uint64
    # In any order, the same month.
    parts = [validate_chunk(frame.iloc[i : i + 2000]) for i in range(0, ROWS, 2000)]
    assert combine(parts[::-1], source="s") == combine(parts, source="s")


def test_combine_refuses_what_is_not_one_month(telco: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="at least one chunk"):
        combine([], source="s")
    one, other = validate_chunk(telco.iloc[:500]), validate_chunk(telco.iloc[500:1000, ::-1])
    with pytest.raises(ValueError, match="same columns"):
        combine([one, other], source="s")


def test_a_suite_that_cannot_be_chunked_is_named(tmp_path: Path, telco: pd.DataFrame) -> None:
    suite = json.loads(DEFAULT_SUITE_PATH.read_text())
    suite["expectations"].append(
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "tenure", "min_value": 1}}
    )
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    assert unchunkable_expectations(path) == ["expect_column_mean_to_be_between"]
    assert unchunkable_expectations() == []
    with pytest.raises(ValueError, match="expect_column_mean_to_be_between"):
        validate_chunk(telco, suite_path=path)
    # The gate asks for chunks; such a suite runs on the whole frame instead, and judges it.
    report = validate_frame.fn(telco, source="s", suite_path=path, chunk_rows=1_000)
    assert report.evaluated == len(suite["expectations"])
    suite["expectations"][-1]["kwargs"]["min_value"] = 1_000
    path.write_text(json.dumps(suite))
    with pytest.raises(SnapshotRejected, match="tenure"):
        validate_frame.fn(telco, source="s", suite_path=path, chunk_rows=1_000)


def test_validate_snapshot_in_chunks_rejects_with_the_same_message(telco: pd.DataFrame) -> None:
    frame = telco.copy()
    frame.loc[[1, 6000], "tenure"] = 99
    messages = []
    for validate in (validate_snapshot.fn, partial(validate_frame.fn, chunk_rows=1500)):
        with pytest.raises(SnapshotRejected) as caught:
            validate(frame, source="m.csv")
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "tenure: 2 values outside [0, 72]" in messages[0]
    assert validate_frame.fn(telco, source="m.csv", chunk_rows=1500).success


def test_scoring_suite_in_chunks(telco: pd.DataFrame) -> None:
    frame = telco.drop(columns=["Churn"])
    frame.loc[[2, 5000], "PaymentMethod"] = "Cash"
    whole = check_snapshot(frame, source="s", for_scoring=True)
    chunked = check_in_chunks(frame, source="s", chunk_rows=2000, for_scoring=True)
    assert_same(chunked, whole)


# --- Parquet: batch by batch, as load_snapshot types the whole file --------------------------


def _whole(location: Path | str) -> ValidationReport:
    snapshot = load_snapshot.fn(SnapshotRequest(str(location), PERIOD))
    return check_snapshot(snapshot.frame, source=snapshot.source)


def _rejection(call: Callable[[], object]) -> str:
    with pytest.raises(SnapshotRejected) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("chunk_rows", [1000, 2600, ROWS])
def test_parquet_of_text_columns_with_blanks_and_text(tmp_path: Path, chunk_rows: int) -> None:
    """A Parquet export of the CSV's text: TotalCharges' blanks are numbers in the chunks
    without text, and wrong-type values in the month (whose column stays text)."""
    raw = pd.read_csv(CSV, dtype=str, keep_default_na=False)
    raw.loc[5000, "TotalCharges"] = "SECRET"
    raw.loc[[10, 6900], "Contract"] = "Weekly"
    path = tmp_path / "text.parquet"
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), path, row_group_size=700)
    report = validate_parquet(str(path), period=PERIOD, chunk_rows=chunk_rows)
    assert_same(report, _whole(path))
    assert "TotalCharges: 12 values of wrong type (expected numeric, got object)" in (
        report.summary()
    )


def test_parquet_month_passes_with_the_loaders_digest_and_drift(tmp_path: Path) -> None:
    frame = generate_snapshot(PERIOD, rows=5000, drift=0.6, scenario="price_rise")
    path = tmp_path / "month.parquet"
    frame.to_parquet(path, index=False, row_group_size=333)  # gathered into chunks
    month = validate_streamed.fn(MonthRead(str(path), PERIOD, chunk_rows=1200))
    snapshot = load_snapshot.fn(SnapshotRequest(str(path), PERIOD))
    assert month.validation == check_snapshot(snapshot.frame, source=snapshot.source)
    assert month.rows == 5000 and month.digest == snapshot.digest
    assert month.features is not None
    profile = profile_frame(generate_snapshot("2026-01", rows=4000))
    streamed = compare_with_profile(month.features, profile, DriftThresholds(), source="s")
    loaded = compare_with_profile(snapshot.frame, profile, DriftThresholds(), source="s")
    assert streamed.summary() == loaded.summary()
    assert [c.psi for c in streamed.columns] == pytest.approx([c.psi for c in loaded.columns])


def test_parquet_rejection_raises_with_the_report(tmp_path: Path) -> None:
    frame = generate_snapshot(PERIOD, rows=3000)
    frame.loc[2999, "customerID"] = frame.loc[0, "customerID"]
    path = tmp_path / "dup.parquet"
    frame.to_parquet(path, index=False)
    message = _rejection(
        lambda: validate_streamed.fn(MonthRead(str(path), PERIOD, chunk_rows=1000))
    )
    assert message == f"Snapshot {path} rejected: {_whole(path).summary()}"
    assert "customerID: 2 rows share their value with another row" in message


def test_partitioned_folder_reads_only_the_period(tmp_path: Path) -> None:
    for period, rows in ((PERIOD, 2500), ("2026-02", 900)):
        folder = tmp_path / f"period={period}"
        folder.mkdir()
        frame = generate_snapshot(period, rows=rows)
        frame.loc[0, "gender"] = "SECRET"
        frame.to_parquet(folder / "part-0.parquet", index=False)
    report = validate_parquet(str(tmp_path), period=PERIOD, chunk_rows=1000)
    assert report.rows == 2500
    assert_same(report, _whole(tmp_path))


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda p: p.write_bytes(b"not parquet at all"), id="not parquet"),
        pytest.param(
            lambda p: (
                generate_snapshot(PERIOD, rows=300)
                .drop(columns=["tenure"])
                .to_parquet(p, index=False)
            ),
            id="missing column",
        ),
        pytest.param(
            lambda p: (
                generate_snapshot(PERIOD, rows=300)
                .assign(tenure=pd.Timestamp("2026-01-01"))
                .to_parquet(p, index=False)
            ),
            id="date for a number",
        ),
        pytest.param(
            lambda p: generate_snapshot(PERIOD, rows=300).head(0).to_parquet(p, index=False),
            id="no rows",
        ),
    ],
)
def test_parquet_rejections_read_as_the_loaders(
    tmp_path: Path, write: Callable[[Path], object]
) -> None:
    path = tmp_path / "month.parquet"
    write(path)
    expected = _rejection(lambda: load_snapshot.fn(SnapshotRequest(str(path), PERIOD)))
    streamed = _rejection(lambda: validate_parquet(str(path), period=PERIOD, chunk_rows=500))
    assert streamed == expected


def test_a_period_column_selects_the_months_rows_as_the_loader_does(tmp_path: Path) -> None:
    path = tmp_path / "months.parquet"
    frame = generate_snapshot(PERIOD, rows=2000)
    frame["period"] = [PERIOD] * 1200 + ["2026-02"] * 500 + ["2025-12"] * 300
    frame.loc[1500, "gender"] = "SECRET"  # another month's row: not this month's problem
    frame.to_parquet(path, index=False, row_group_size=400)
    report = validate_parquet(str(path), period=PERIOD, chunk_rows=500)
    assert report.success and report.rows == 1200
    assert_same(report, _whole(path))


def test_parquet_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "month.parquet"
    generate_snapshot(PERIOD, rows=500).to_parquet(path, index=False)
    expected = _rejection(
        lambda: load_snapshot.fn(SnapshotRequest(str(path), PERIOD), max_bytes=1000)
    )
    assert _rejection(lambda: validate_parquet(str(path), period=PERIOD, max_bytes=1000)) == (
        expected
    )
    assert "over the 1,000-byte limit" in expected


def test_which_sources_stream(tmp_path: Path) -> None:
    options = SourceOptions()
    folder = tmp_path / "months"
    folder.mkdir()
    assert parquet_location("/d/{period}.parquet", PERIOD, options) == f"/d/{PERIOD}.parquet"
    assert parquet_location(str(folder), PERIOD, options) == str(folder)
    assert parquet_location("s3://bucket/m.parquet", PERIOD, options) == "s3://bucket/m.parquet"
    for source in ("/d/m.csv", "https://x/m.parquet", "generated", "sqlite:///m.db"):
        assert parquet_location(source, PERIOD, options) is None
    assert parquet_location("s3://{secret:key}@b/m.parquet", PERIOD, options) is None


def test_the_flow_form_default_is_the_modules() -> None:
    assert ValidateParameters(data="x.parquet").chunk_rows == DEFAULT_CHUNK_ROWS
    with pytest.raises(ValueError, match="chunk_rows"):
        ValidateParameters(data="x.parquet", chunk_rows=10)
