"""Issue 30, item 5: what a user hit first, each said so a person can act on it.

Unexpected columns named (a header row is not data), a scoring base's target not called
unexpected, labels in another encoding than Yes/No named, a period column of dates read as
the month's, and an output in a format scores are not written in refused up front.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from flows.parameters import ScoreParameters
from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.parse import parse_snapshot
from tasks.data.request import SnapshotRequest, SourceOptions
from tasks.data.source import locate_month, source_for
from tasks.data.typed import check_typed_frame
from tasks.errors import EXIT_REJECTED, EXIT_USAGE, SnapshotRejected, UsageError
from tasks.gate.chunks import check_in_chunks
from tasks.gate.stream import validate_parquet
from tasks.gate.suite import ValidationReport, check_snapshot, validate_snapshot
from tasks.runtime.deadline import Deadline
from tasks.scoring.output import output_format

PERIOD = "2026-03"
ROWS = 600


@pytest.fixture(scope="module")
def month() -> pd.DataFrame:
    return generate_snapshot(PERIOD, rows=ROWS, seed=3)


def _both(frame: pd.DataFrame, *, for_scoring: bool = False) -> list[ValidationReport]:
    """The report of the whole frame and the report in chunks: they must say the same."""
    return [
        check_snapshot(frame, source="m.csv", for_scoring=for_scoring),
        check_in_chunks(frame, source="m.csv", chunk_rows=250, for_scoring=for_scoring),
    ]


# --- 1, 2: unexpected columns ------------------------------------------------------------------


def test_an_unexpected_column_is_named_in_chunks_too(month: pd.DataFrame) -> None:
    for report in _both(month.assign(Region="north")):
        assert "(table): 1 unexpected column: 'Region'" in report.summary()
        assert "north" not in report.summary()


def test_the_target_of_a_base_to_score_is_not_unexpected(month: pd.DataFrame) -> None:
    """A base to score may bring the target or not; with another column missing, only that
    one is reported (extra columns are allowed when scoring)."""
    for report in _both(month.drop(columns=["gender"]), for_scoring=True):
        assert "(table): missing column gender\n" in report.summary()
        assert "unexpected" not in report.summary()


# --- 3: labels in another encoding -------------------------------------------------------------


@pytest.mark.parametrize(
    ("encode", "said"),
    [
        ({"Yes": 1, "No": 0}, "holds 0/1 values; expected Yes/No (map 1 -> Yes, 0 -> No)"),
        ({"Yes": "1", "No": "0"}, "holds 0/1 values; expected Yes/No (map 1 -> Yes, 0 -> No)"),
        (
            {"Yes": True, "No": False},
            "holds False/True values; expected Yes/No (map True -> Yes, False -> No)",
        ),
        (
            {"Yes": "yes", "No": "no"},
            "holds no/yes values; expected Yes/No (map yes -> Yes, no -> No)",
        ),
    ],
    ids=["0/1 numbers", "0/1 text", "booleans", "lower case"],
)
def test_labels_in_another_encoding_are_named(
    month: pd.DataFrame, encode: dict[str, object], said: str
) -> None:
    encoded = month.assign(Churn=month["Churn"].map(encode))
    for report in _both(encoded):
        summary = report.summary()
        assert f"  Churn: {said} (4 checks)" in summary
        assert "churn rate" not in summary and "outside {No, Yes}" not in summary


def test_a_csv_with_0_1_labels_is_rejected_naming_the_encoding(month: pd.DataFrame) -> None:
    text = month.assign(Churn=month["Churn"].map({"Yes": 1, "No": 0})).to_csv(index=False)
    frame = parse_snapshot(text.encode(), source="m.csv")
    with pytest.raises(
        SnapshotRejected, match=r"Churn: holds 0/1 values; expected Yes/No \(map 1 -> Yes"
    ) as caught:
        validate_snapshot.fn(frame, source="m.csv")
    assert caught.value.exit_code == EXIT_REJECTED


def test_a_few_stray_labels_keep_the_churn_rate(month: pd.DataFrame) -> None:
    """Mostly Yes/No with a few 1s: the domain check names the encoding, the rate is real."""
    mixed = month.assign(Churn=month["Churn"].where(month.index >= 3, "1"))
    summary = check_snapshot(mixed, source="m.csv").summary()
    assert "Churn: holds No/1/Yes values; expected Yes/No (map 1 -> Yes)" in summary


def test_a_typed_source_with_integer_labels_names_the_encoding(month: pd.DataFrame) -> None:
    encoded = month.assign(Churn=(month["Churn"] == "Yes").astype("int64"), period=PERIOD)
    with pytest.raises(
        SnapshotRejected,
        match=r"^Snapshot db://x: column Churn holds 0/1 values; expected Yes/No "
        r"\(map 1 -> Yes, 0 -> No\) \(type int64 in the query result\)$",
    ):
        check_typed_frame(
            encoded, source="db://x", period=PERIOD, period_column="period", what="query result"
        )


# --- 4: a period column of dates ---------------------------------------------------------------


def _with_period(month: pd.DataFrame, ours: object, theirs: object, n: int = 100) -> pd.DataFrame:
    """The month's rows marked `ours`, then `n` more rows of another period marked `theirs`."""
    other = month.head(n).assign(customerID=[f"OTHER-{i}" for i in range(n)])
    return pd.concat(
        [month.assign(period=[ours] * len(month)), other.assign(period=[theirs] * n)],
        ignore_index=True,
    )


#: A period column as each kind of source may hold it: the month's value, another month's.
DATED = {
    "ISO dates as text": ("2026-03-01", "2026-02-01"),
    "ISO times as text": ("2026-03-31T23:59:00", "2026-04-01T00:00:00"),
    "dates": (date(2026, 3, 14), date(2026, 4, 1)),
    "timestamps": (pd.Timestamp("2026-03-05 10:00"), pd.Timestamp("2026-02-28 23:00")),
    "zoned timestamps": (
        pd.Timestamp("2026-03-01 00:30", tz="Europe/Paris"),  # 2026-02-28 in UTC
        pd.Timestamp("2026-02-28 23:30", tz="Europe/Paris"),
    ),
}


@pytest.mark.parametrize(("ours", "theirs"), list(DATED.values()), ids=list(DATED))
def test_a_parquet_period_column_of_dates_selects_the_month(
    month: pd.DataFrame, tmp_path: Path, ours: object, theirs: object
) -> None:
    """Read whole, validated streamed, scored in batches: the same rows, the month's."""
    path = tmp_path / "months.parquet"
    _with_period(month, ours, theirs).to_parquet(path, index=False, row_group_size=256)
    loaded = load_snapshot.fn(SnapshotRequest(str(path), PERIOD))
    assert loaded.rows == ROWS and "period" not in loaded.frame
    assert not loaded.frame["customerID"].str.startswith("OTHER").any()
    assert validate_parquet(str(path), period=PERIOD, chunk_rows=250).rows == ROWS
    location = locate_month(str(path), PERIOD)
    batches = source_for(location).batches(location, batch_rows=250, deadline=Deadline.after(60))
    assert sum(len(frame) for frame, _ in batches) == ROWS


@pytest.mark.parametrize(
    "ours", [v for v, _ in DATED.values() if not isinstance(v, pd.Timestamp)]
)  # fmt: skip
def test_rows_read_whole_are_the_months_when_dated_in_it(month: pd.DataFrame, ours: object) -> None:
    """A query's result (or a Parquet file over http) is checked whole: dates in the month
    are the month's; a date in another month is another period, said as its month."""
    checked = check_typed_frame(
        month.assign(period=[ours] * ROWS), source="db://x", period=PERIOD,
        period_column="period", what="query result",
    )  # fmt: skip
    assert len(checked) == ROWS and "period" not in checked
    with pytest.raises(
        SnapshotRejected,
        match=r"holds 100 rows of another period than 2026-03 in column period \(2026-04\)$",
    ):
        check_typed_frame(
            _with_period(month, ours, date(2026, 4, 2)), source="db://x", period=PERIOD,
            period_column="period", what="query result",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["March 2026"], "text that is neither YYYY-MM nor an ISO date"),
        ([202603], "numbers"),
        (["202603"], "numbers"),
        ([None], "empty cells only"),
    ],
    ids=["month names", "numbers", "numbers as text", "empty"],
)
def test_a_period_column_of_another_kind_is_named_by_kind(
    month: pd.DataFrame, tmp_path: Path, values: list[object], kind: str
) -> None:
    """Neither the month nor dates: still rejected, saying what the column looks like, never
    quoting it; whichever way the Parquet file is read."""
    path = tmp_path / "months.parquet"
    month.assign(period=values * ROWS).to_parquet(path, index=False)
    said = (
        "the Parquet data has no rows for 2026-03: its period column period holds neither "
        f"months like 2026-03 nor dates (it looks like {kind})"
    )
    location = locate_month(str(path), PERIOD)
    reads: list[Callable[[], object]] = [
        lambda: load_snapshot.fn(SnapshotRequest(str(path), PERIOD)),
        lambda: validate_parquet(str(path), period=PERIOD),
        lambda: list(
            source_for(location).batches(location, batch_rows=250, deadline=Deadline.after(60))
        ),
    ]
    for read in reads:
        with pytest.raises(SnapshotRejected, match="no rows for 2026-03") as caught:
            read()
        assert said in str(caught.value)
        assert "March 2026" not in str(caught.value) and "202603" not in str(caught.value)


def _sqlite_table(path: Path, frame: pd.DataFrame, period_type: str) -> str:
    """`frame` as table `months` of a SQLite file, its period column declared `period_type`."""
    columns = ", ".join(
        f'"{c}"' + (f" {period_type}" if c == "period" else "") for c in frame.columns
    )
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False)
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE months ({columns})")
        db.executemany(
            f"INSERT INTO months VALUES ({', '.join('?' * len(frame.columns))})",
            [tuple(str(v) if isinstance(v, date) else v for v in row) for row in rows],
        )
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("period_type", "ours", "theirs"),
    [
        ("TEXT", "2026-03", "2026-02"),
        ("TEXT", "2026-03-01", "2026-02-01"),
        ("DATE", "2026-03-14", "2026-04-01"),
        ("TIMESTAMP", "2026-03-31 23:59:59", "2026-04-01 00:00:00"),
    ],
    ids=["months", "ISO dates as text", "dates", "timestamps"],
)
def test_a_database_table_selects_the_months_rows_by_its_period_column(
    month: pd.DataFrame, tmp_path: Path, period_type: str, ours: str, theirs: str
) -> None:
    url = _sqlite_table(tmp_path / "crm.db", _with_period(month, ours, theirs), period_type)
    loaded = load_snapshot.fn(SnapshotRequest(url, PERIOD, options=SourceOptions(table="months")))
    assert loaded.rows == ROWS
    assert not loaded.frame["customerID"].str.startswith("OTHER").any()


def test_a_database_period_column_of_numbers_is_named_by_kind(
    month: pd.DataFrame, tmp_path: Path
) -> None:
    url = _sqlite_table(tmp_path / "crm.db", month.assign(period=202603), "INTEGER")
    with pytest.raises(
        SnapshotRejected,
        match=r"the table months has no rows for 2026-03: its period column period holds "
        r"neither months like 2026-03 nor dates \(it looks like numbers\)$",
    ):
        load_snapshot.fn(SnapshotRequest(url, PERIOD, options=SourceOptions(table="months")))


# --- 5: the output's format --------------------------------------------------------------------


@pytest.mark.parametrize("output", ["scores.xlsx", "scores.csv.gz", "scores"])
def test_an_output_scores_are_not_written_in_is_refused(output: str) -> None:
    with pytest.raises(ValueError, match=r"scores are written as \.csv, \.parquet, \.pq"):
        ScoreParameters(data="base.csv", output=output)
    with pytest.raises(UsageError, match=r"scores are written as \.csv, \.parquet, \.pq"):
        output_format(Path(output))
    assert output_format(Path("s.CSV")) == "csv" and output_format(Path("s.pq")) == "parquet"


def test_the_score_command_refuses_an_xlsx_output_before_anything_runs(
    state_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base.csv"
    base.write_text("not read: the command line is refused first")
    code = main(["score", "--data", str(base), "--output", str(tmp_path / "x.xlsx")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "--output: the output has extension .xlsx; scores are written as .csv, .parquet" in err
    assert "Traceback" not in err
    assert not state_home.exists() and not (tmp_path / "x.xlsx").exists()
