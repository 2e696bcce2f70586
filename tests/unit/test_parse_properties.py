"""Properties of the parse guards and type coercion on any bytes and on mutated Telco-shaped CSVs.

Whatever the bytes, parsing either returns a frame or raises `SnapshotRejected`; a rejection's
message names columns, lines and counts, never a cell (the rows carry marker values to look
for); a well-formed file parses to the schema's dtypes.
"""

from __future__ import annotations

import contextlib
import csv
import io
from functools import cache
from typing import Any, Literal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.data.generate import generate_snapshot
from tasks.data.parse import check_csv_layout, coerce_types, decode_snapshot, parse_snapshot
from tasks.data.schema import COLUMNS, FLOAT_COLUMNS, ID_COLUMN, INTEGER_COLUMNS, STRING_COLUMNS
from tasks.errors import SnapshotRejected

#: Marker text planted in cells: a rejection message must never contain it.
SECRET = "Zq7SECRET"
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMERIC = (*INTEGER_COLUMNS, *FLOAT_COLUMNS)


@cache
def _rows() -> tuple[tuple[str, ...], ...]:
    """Five valid Telco rows as text, customer IDs marked."""
    frame = generate_snapshot("2026-01", rows=5, seed=3)[list(COLUMNS)]
    frame[ID_COLUMN] = [f"{SECRET}{i}" for i in range(len(frame))]
    return tuple(tuple(str(v) for v in row) for row in frame.itertuples(index=False))


def _csv(header: list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _parse_or_reject(payload: bytes) -> pd.DataFrame | None:
    """Parse, allowing only a `SnapshotRejected` whose message quotes no cell."""
    try:
        return parse_snapshot(payload, source="m.csv")
    except SnapshotRejected as exc:
        message = str(exc)
        assert message.startswith("Snapshot m.csv: ")
        assert SECRET not in message and "JUNK" not in message, message
        return None


@PROPERTY
@given(st.binary(max_size=2048))
def test_any_bytes_parse_or_are_rejected(payload: bytes) -> None:
    _parse_or_reject(payload)


@PROPERTY
@given(st.text(max_size=400))
def test_any_text_parses_or_is_rejected(text: str) -> None:
    _parse_or_reject(text.encode("utf-8", "surrogatepass"))


junk = st.sampled_from(
    ["JUNK", " JUNK ", "JUNK,1", 'JUNK"', "1e999", "nan", "-0", "0x1F", "\uff11\uff12"]
)
mutation = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(COLUMNS)),
    st.tuples(st.just("duplicate"), st.sampled_from(COLUMNS)),
    st.tuples(st.just("rename"), st.sampled_from(COLUMNS)),
    st.tuples(st.just("junk"), st.sampled_from(NUMERIC), st.integers(0, 4), junk),
    st.tuples(st.just("blank_total"), st.integers(0, 4), st.sampled_from(["", " ", "  "])),
    st.tuples(st.just("delimiter"), st.sampled_from([";", "\t", "|"])),
    st.tuples(st.just("bom"), st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb\xbf" * 2])),
    st.tuples(st.just("nul"), st.integers(0, 10_000)),
    st.tuples(st.just("crlf")),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("short_row"), st.integers(0, 4)),
)


def _mutate(steps: list[tuple[Any, ...]]) -> bytes:
    header, rows = list(COLUMNS), [list(r) for r in _rows()]
    delimiter, prefix, raw_edits, short = ",", b"", [], set()
    for step in steps:
        kind = step[0]
        if kind in ("drop", "duplicate", "rename") and step[1] in header:
            i = header.index(str(step[1]))
            if kind == "drop":
                del header[i]
                for row in rows:
                    del row[i]
            elif kind == "duplicate":
                header.append(header[i])
                for row in rows:
                    row.append(row[i])
            else:
                header[i] = f"{SECRET}col"
        elif kind == "junk" and step[1] in header:
            rows[int(step[2])][header.index(str(step[1]))] = str(step[3])
        elif kind == "blank_total" and "TotalCharges" in header:
            rows[int(step[1])][header.index("TotalCharges")] = str(step[2])
        elif kind == "delimiter":
            delimiter = str(step[1])
        elif kind == "bom":
            prefix = step[1]
        elif kind == "short_row":
            short.add(int(step[1]))
        elif kind in ("nul", "truncate", "crlf"):
            raw_edits.append(step)
    rows = [row[:-1] if i in short else row for i, row in enumerate(rows)]
    payload = prefix + _csv(header, rows, delimiter).encode()
    for step in raw_edits:
        if step[0] == "nul":
            at = int(step[1]) % (len(payload) + 1)
            payload = payload[:at] + b"\x00" + payload[at:]
        elif step[0] == "truncate":
            payload = payload[: int(step[1]) % (len(payload) + 1)]
        else:
            payload = payload.replace(b"\n", b"\r\n")
    return payload


@PROPERTY
@given(st.lists(mutation, max_size=4))
def test_mutated_telco_csvs_parse_or_are_rejected_without_quoting_cells(
    steps: list[tuple[Any, ...]],
) -> None:
    frame = _parse_or_reject(_mutate(steps))
    if frame is None:
        return
    for column in INTEGER_COLUMNS:
        if column in frame:
            assert frame[column].dtype in ("int64", "float64", object), column
    for column in FLOAT_COLUMNS:
        if column in frame:
            assert frame[column].dtype in ("float64", object), column
    for column in STRING_COLUMNS:
        if column in frame:
            assert frame[column].dtype == object, column


@PROPERTY
@given(
    blanks=st.sets(st.integers(0, 4)),
    bom=st.booleans(),
    crlf=st.booleans(),
    quote_all=st.booleans(),
    spaces=st.booleans(),
)
def test_valid_files_parse_to_the_schema_dtypes(
    blanks: set[int], bom: bool, crlf: bool, quote_all: bool, spaces: bool
) -> None:
    rows = [list(r) for r in _rows()]
    total = COLUMNS.index("TotalCharges")
    for i in blanks:
        rows[i][total] = " "
    if spaces:  # padding around numbers is not a type problem
        for row in rows:
            row[COLUMNS.index("tenure")] = f" {row[COLUMNS.index('tenure')]} "
    out = io.StringIO()
    quoting: Literal[0, 1] = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    csv.writer(out, lineterminator="\r\n" if crlf else "\n", quoting=quoting).writerows(
        [list(COLUMNS), *rows]
    )
    payload = (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()
    frame = parse_snapshot(payload, source="m.csv")
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 5
    assert all(frame[c].dtype == "int64" for c in INTEGER_COLUMNS)
    assert all(frame[c].dtype == "float64" for c in FLOAT_COLUMNS)
    assert all(frame[c].dtype == object for c in STRING_COLUMNS)
    assert frame["TotalCharges"].isna().sum() == len(blanks)
    assert frame[ID_COLUMN].tolist() == [f"{SECRET}{i}" for i in range(5)]


@PROPERTY
@given(st.lists(st.one_of(st.none(), st.text(max_size=6), st.floats(allow_nan=True)), max_size=6))
def test_coerce_types_never_raises_on_any_cells(cells: list[object]) -> None:
    """Found by this test: a column holding no strings (e.g. `[0.0]`) made `.str` raise."""
    frame = pd.DataFrame({c: pd.Series(cells, dtype=object) for c in (*NUMERIC, "Contract")})
    out = coerce_types(frame)
    for column in NUMERIC:
        assert out[column].dtype in ("int64", "float64", object)


def test_decode_guard_is_total_on_each_first_byte() -> None:
    for first in range(256):
        with contextlib.suppress(SnapshotRejected):
            decode_snapshot(bytes([first]) + b"a,b\n", source="m.csv")
    with pytest.raises(SnapshotRejected):
        check_csv_layout("\n\n", source="m.csv")


def test_coerce_types_keeps_cells_that_are_not_strings() -> None:
    """Regression: `.str.strip()` raised on a numbers-only object column, blanked mixed ones."""
    frame = pd.DataFrame(
        {
            "tenure": pd.Series([0.0, 5.0], dtype=object),
            "Contract": pd.Series([1.5, " Two year "], dtype=object),
        }
    )
    out = coerce_types(frame)
    assert out["tenure"].dtype == "int64" and out["tenure"].tolist() == [0, 5]
    assert out["Contract"].tolist() == [1.5, "Two year"]
