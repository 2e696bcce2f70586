"""Loading, digesting and splitting snapshots; small inline CSVs and frames."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from flows.parameters import RetrainParameters
from tasks.data.fetch import fetch_bytes
from tasks.data.parse import parse_snapshot
from tasks.data.request import current_period, resolve_source
from tasks.data.snapshot import digest_frame
from tasks.decision.holdout import split_holdout
from tasks.errors import SnapshotRejected
from tasks.runtime.deadline import Deadline
from tasks.settings import redact_uri

HEADER = "customerID,SeniorCitizen,tenure,MonthlyCharges,TotalCharges,Contract,Churn\n"


def test_parse_turns_blank_total_charges_into_missing() -> None:
    csv = HEADER + "0001-AAAAA,0,0,20.5, ,Two year,No\n0002-BBBBB,1,3,70.0,210.4,One year,Yes\n"
    frame = parse_snapshot(csv.encode(), source="inline.csv")
    assert frame["TotalCharges"].dtype == "float64"
    assert pd.isna(frame.loc[0, "TotalCharges"])
    assert frame["tenure"].dtype == "int64" and frame["SeniorCitizen"].tolist() == [0, 1]
    assert frame["customerID"].tolist() == ["0001-AAAAA", "0002-BBBBB"]


def test_parse_keeps_text_in_a_numeric_column_for_the_suite_to_report() -> None:
    csv = HEADER + "0001-AAAAA,0,5,twenty,100,Two year,No\n"
    frame = parse_snapshot(csv.encode(), source="inline.csv")
    assert frame["MonthlyCharges"].dtype == object


def test_parse_does_not_turn_na_words_into_missing() -> None:
    """pandas reads "NA"/"None" as NaN silently; a category value must stay what it was."""
    csv = HEADER + "0001-AAAAA,0,5,20,100,None,No\n"
    assert parse_snapshot(csv.encode(), source="x.csv").loc[0, "Contract"] == "None"


def test_parse_rejects_empty_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(SnapshotRejected, match=r"month\.csv: file is empty"):
        parse_snapshot(b"  \n", source="month.csv")
    with pytest.raises(SnapshotRejected, match=r"month\.csv: not UTF-8"):
        parse_snapshot(
            HEADER.encode() + "0001,0,1,é,1,No,No\n".encode("latin-1"), source="month.csv"
        )


def _fetch(location: str, max_bytes: int = 10**6) -> bytes:
    return fetch_bytes(location, shown=location, deadline=Deadline.after(30), max_bytes=max_bytes)


def test_read_source_refuses_missing_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(SnapshotRejected, match=r"nope\.csv: not found"):
        _fetch(str(tmp_path / "nope.csv"))
    big = tmp_path / "big.csv"
    big.write_text("x" * 100)
    with pytest.raises(SnapshotRejected, match="over the 10-byte limit"):
        _fetch(str(big), max_bytes=10)


@pytest.fixture
def http_csv(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving tmp_path."""
    (tmp_path / "2026-03.csv").write_text(HEADER + "0001-AAAAA,0,5,20,100,Two year,No\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_read_source_over_http_with_period_template(http_csv: str) -> None:
    url = resolve_source(http_csv + "/{period}.csv", "2026-03")
    frame = parse_snapshot(_fetch(url), source=url)
    assert frame.loc[0, "customerID"] == "0001-AAAAA"


def test_digest_ignores_column_order_but_not_values() -> None:
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert digest_frame(a) == digest_frame(a[["y", "x"]])
    assert digest_frame(a) != digest_frame(a.assign(x=[1, 3]))
    assert digest_frame(a).startswith("sha256:")


def test_split_is_stratified_seeded_and_disjoint() -> None:
    frame = pd.DataFrame(
        {"customerID": [f"{i:04d}-X" for i in range(200)], "Churn": ["Yes"] * 50 + ["No"] * 150}
    )
    train, holdout = split_holdout(frame, fraction=0.2, seed=7)
    assert len(holdout) == 40 and (holdout["Churn"] == "Yes").sum() == 10
    assert not set(train["customerID"]) & set(holdout["customerID"])
    again, _ = split_holdout(frame, fraction=0.2, seed=7)
    other, _ = split_holdout(frame, fraction=0.2, seed=8)
    assert train["customerID"].tolist() == again["customerID"].tolist()
    assert train["customerID"].tolist() != other["customerID"].tolist()


def test_period_helpers() -> None:
    assert current_period(datetime(2026, 2, 28, 23, 59, tzinfo=UTC)) == "2026-02"
    with pytest.raises(ValueError, match="pattern"):
        RetrainParameters(period="2026-13")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://alice:s3cret@dagshub.com/o/r.mlflow", "https://dagshub.com/o/r.mlflow"),
        ("http://127.0.0.1:5000/?token=abc", "http://127.0.0.1:5000/"),
        ("sqlite:////tmp/state/mlflow.db", "sqlite:////tmp/state/mlflow.db"),
        ("/data/2026-01.csv", "/data/2026-01.csv"),
    ],
)
def test_redact_uri_drops_credentials(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_the_digest_is_pandas_row_hash_of_the_sorted_columns_without_copying_them(
    real_csv: Path,
) -> None:
    """digest_frame combines column hashes itself; it must agree with pandas' frame hash."""
    import hashlib

    def by_pandas(frame: pd.DataFrame) -> str:
        ordered = frame[sorted(frame.columns)]
        digest = hashlib.sha256(",".join(ordered.columns).encode())
        digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
        return f"sha256:{digest.hexdigest()[:32]}"

    frame = parse_snapshot(real_csv.read_bytes(), source="telco.csv")
    for sample in (frame, frame.iloc[:1], frame.iloc[:0], frame[["tenure", "gender"]]):
        assert digest_frame(sample) == by_pandas(sample)
    categorical = frame.assign(gender=frame["gender"].astype("category"))
    assert digest_frame(categorical) == digest_frame(frame)  # values, not their dtype
    assert digest_frame(frame.iloc[::-1]) != digest_frame(frame)  # row order counts


def test_a_compact_parquet_month_is_the_same_month(tmp_path: Path) -> None:
    """Text columns kept as categoricals (the retrain's load) change nothing a run sees: the
    digest, the suite's report, the drift, and the holdout and training rows it takes out."""
    import numpy as np

    from tasks.data.generate import generate_snapshot
    from tasks.data.load import load_snapshot
    from tasks.data.request import SnapshotRequest
    from tasks.decision.holdout import split_fair_holdout
    from tasks.gate.drift import compare_with_profile, profile_frame
    from tasks.gate.suite import check_snapshot
    from tasks.gate.thresholds import DriftThresholds

    frame = generate_snapshot("2026-01", rows=3000)
    frame.loc[3, "gender"] = None  # a null in a categorical
    frame.loc[5, "Contract"] = " Two year"  # stripped, it joins "Two year": not a rename
    frame.loc[7, "PaymentMethod"] = " Mailed check "
    frame.loc[9, "TotalCharges"] = np.nan
    frame.to_parquet(tmp_path / "month.parquet", index=False, row_group_size=1000)
    seen = {}
    for compact in (False, True):
        request = SnapshotRequest(str(tmp_path / "month.parquet"), "2026-01", categories=compact)
        snapshot = load_snapshot.fn(request, max_bytes=10**9)
        split = split_fair_holdout(snapshot.frame, fraction=0.2, seed=3)
        drift = compare_with_profile(
            snapshot.frame, profile_frame(frame), DriftThresholds(), source="s"
        )
        report = check_snapshot(snapshot.frame, source="s")
        seen[compact] = (snapshot, split, drift, report)
    (whole, split, drift, report), (compact, c_split, c_drift, c_report) = seen[False], seen[True]
    assert isinstance(compact.frame["InternetService"].dtype, pd.CategoricalDtype)
    assert compact.frame["PaymentMethod"].dtype == object  # " Mailed check " joins a value
    assert compact.frame["customerID"].dtype == object
    assert compact.digest == whole.digest
    assert c_report == report and "gender: 1 null value" in report.summary()
    assert str(c_drift) == str(drift)
    pd.testing.assert_frame_equal(c_split.holdout, split.holdout)
    pd.testing.assert_frame_equal(c_split.train, split.train)
    assert sum(t == "object" for t in c_split.holdout.dtypes.astype(str)) == 17  # objects again
    assert set(c_split.holdout["Contract"]) <= {"Month-to-month", "One year", "Two year"}
