"""Parse guards on raw bytes: each broken file fails with the file name and the problem."""

from __future__ import annotations

import pytest

from tasks.data.parse import check_csv_layout, decode_snapshot, parse_snapshot
from tasks.errors import SnapshotRejected
from tasks.messages import describe_names

HEADER = "customerID,SeniorCitizen,tenure,MonthlyCharges,TotalCharges,Contract,Churn"
ROW = "0001-AAAAA,0,5,20.5,100,Two year,No"


def _csv(*lines: str) -> str:
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", r"m\.csv: file is empty"),
        (b" \r\n\n", r"m\.csv: file is empty"),
        (b"PK\x03\x04rest-of-zip", r"m\.csv: file is a ZIP archive \(an Excel \.xlsx"),
        (b"\x1f\x8b\x08compressed", r"m\.csv: file is gzip-compressed"),
        (_csv(HEADER, ROW).encode("utf-16"), r"m\.csv: file is UTF-16 text"),
        (_csv(HEADER, ROW).encode("utf-16-le"), r"m\.csv: file looks like UTF-16 text"),
        (
            _csv(HEADER, ROW, "0002-B,0,5,20,100,Two year,Bientôt").encode("latin-1"),
            r"m\.csv: not UTF-8 text \(first bad byte on line 3, byte \d+\); re-export",
        ),
    ],
)
def test_decode_refuses_what_is_not_utf8_text(payload: bytes, problem: str) -> None:
    with pytest.raises(SnapshotRejected, match=problem):
        decode_snapshot(payload, source="m.csv")


def test_decode_accepts_utf8_with_a_byte_order_mark() -> None:
    assert decode_snapshot(b"\xef\xbb\xbf" + _csv(HEADER, ROW).encode(), source="m.csv").startswith(
        "customerID"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            _csv(HEADER.replace(",", ";"), ROW.replace(",", ";")),
            r"one column only: is the delimiter ';'\?",
        ),
        (
            _csv(HEADER.replace(",", "\t"), ROW.replace(",", "\t")),
            r"one column only: is the delimiter a tab\?",
        ),
        (_csv("customerID", "0001"), r"one column only; expected 21 comma-separated columns"),
        (_csv(HEADER + ",tenure", ROW + ",5"), r"duplicated header names: tenure$"),
        (_csv(HEADER + ",X,X", ROW + ",1,2"), r"duplicated header names: 1 other$"),
        (
            _csv(HEADER + ",", ROW + ","),
            r"header has an empty column name at position 8 \(a trailing comma\?\)",
        ),
        (_csv(HEADER), r"header only, no rows"),
        (_csv(HEADER, "", "  "), r"line 3 has 1 field, the header has 7"),
        (_csv(HEADER, ROW, ROW, "0003-C,0,5,20"), r"line 4 has 4 fields, the header has 7$"),
        (
            _csv(HEADER, ROW + ",extra", ROW, "0003-C,0,5,20"),
            r"line 2 has 8 fields, the header has 7 \(and 1 more line of the wrong width\)",
        ),
        (_csv(ROW, ROW), r"the first line is not a header row"),
    ],
)
def test_layout_guards(text: str, problem: str) -> None:
    with pytest.raises(SnapshotRejected, match=r"^Snapshot m\.csv: (" + problem + ")"):
        check_csv_layout(text, source="m.csv")


def test_quoted_commas_are_one_field_and_ragged_rows_still_found() -> None:
    assert check_csv_layout(_csv(HEADER, '0001-A,0,5,"20,5",100,Two year,No'), source="m").rows == 1
    text = _csv(HEADER, '0001-A,0,5,"20,5",100,Two year,No', "0002-B,0,5")
    with pytest.raises(SnapshotRejected, match=r"line 3 has 3 fields, the header has 7"):
        check_csv_layout(text, source="m.csv")


def test_unterminated_quote_is_malformed() -> None:
    text = _csv(HEADER, '0001-A,0,5,"20.5,100,Two year,No', ROW)
    with pytest.raises(SnapshotRejected, match=r"m\.csv: (malformed CSV|line \d+ has)"):
        check_csv_layout(text, source="m.csv")


def test_blank_lines_and_crlf_are_fine() -> None:
    text = "\r\n" + HEADER + "\r\n" + ROW + "\r\n\r\n" + ROW + "\r\n"
    layout = check_csv_layout(text, source="m.csv")
    assert layout.rows == 2 and layout.header[0] == "customerID"


def test_guards_run_before_pandas_would_pad_or_rename() -> None:
    """pandas pads a short row with NaN and renames a duplicate to `tenure.1` without a word."""
    with pytest.raises(SnapshotRejected, match="line 3 has 6 fields"):
        parse_snapshot(_csv(HEADER, ROW, ROW.rsplit(",", 1)[0]).encode(), source="m.csv")
    with pytest.raises(SnapshotRejected, match="duplicated header names: tenure"):
        parse_snapshot(_csv(HEADER + ",tenure", ROW + ",3").encode(), source="m.csv")


def test_messages_never_quote_unknown_names() -> None:
    assert describe_names(["tenure", "0001-AAAAA", "Yes"]) == "tenure, 2 others"
    with pytest.raises(SnapshotRejected) as caught:
        check_csv_layout(_csv(HEADER + ",0001-SECRET,0001-SECRET", ROW + ",a,b"), source="m.csv")
    assert "SECRET" not in str(caught.value)


def test_the_redacted_source_names_the_file() -> None:
    with pytest.raises(
        SnapshotRejected, match=r"^Snapshot https://host/d/2026-01\.csv: header only"
    ):
        parse_snapshot(_csv(HEADER).encode(), source="https://user:pw@host/d/2026-01.csv?sig=abc")
