"""Parse guards: refuse a file that is not a well-formed CSV before pandas or GX see it.

pandas reads several broken files quietly: a `;` file becomes one column, duplicated headers
are renamed `x.1`, a short row is padded with NaN, a missing header row turns the first
customer into column names. Each guard here looks at the raw text and raises
`SnapshotRejected("Snapshot <file>: <problem>")`. Messages name lines, columns and counts, never
cell values (an unknown header is counted, not quoted: without a header row it is a customer's).
"""

from __future__ import annotations

import csv
import io
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.data.schema import (
    COLUMNS,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    STRING_COLUMNS,
)
from tasks.errors import SnapshotRejected
from tasks.messages import describe_names, normalise_name, plural
from tasks.settings import redact_uri

#: Signatures of files people export by mistake instead of CSV.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?), not CSV text"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook, not CSV text"),
    (b"\x1f\x8b", "gzip-compressed: name it .csv.gz or set the format to csv.gz"),
    (b"%PDF", "a PDF document, not CSV text"),
)
_OTHER_DELIMITERS = (";", "\t", "|")
_DELIMITER_NAMES = {";": "';'", "\t": "a tab", "|": "'|'"}


@dataclass(frozen=True)
class CsvLayout:
    """What the guards learned about a file that passed them."""

    header: tuple[str, ...]
    rows: int


def decode_snapshot(payload: bytes, *, source: str) -> str:
    """The file's text, refusing empty, binary, UTF-16 and non-UTF-8 content."""
    if not payload.strip():
        raise _rejected(source, "file is empty")
    for signature, problem in _BINARY_SIGNATURES:
        if payload.startswith(signature):
            raise _rejected(source, f"file is {problem}")
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _rejected(source, "file is UTF-16 text; re-export it as UTF-8")
    head = payload[:4096]
    if b"\x00" in head:
        # UTF-16 without a byte-order mark puts a NUL beside every ASCII character.
        if head.count(b"\x00") * 3 >= len(head):
            raise _rejected(source, "file looks like UTF-16 text; re-export it as UTF-8")
        raise _rejected(source, "file holds binary data (NUL bytes), not CSV text")
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = payload.count(b"\n", 0, exc.start) + 1
        raise _rejected(
            source,
            f"not UTF-8 text (first bad byte on line {line}, byte {exc.start}); re-export it "
            "as UTF-8 (it may be Latin-1 or Windows-1252)",
        ) from exc


def check_csv_layout(text: str, *, source: str) -> CsvLayout:
    """Refuse a wrong delimiter, a bad or missing header, no rows, or rows of the wrong width."""
    # Only \n and \r end a CSV record (str.splitlines would also split on \x85 or \u2028).
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise _rejected(source, "file is empty")
    header = _split_header(lines[first], source=source, line_number=first + 1)
    _check_header(header, source=source)
    width = len(header)
    body = lines[first + 1 :]
    rows = sum(1 for line in body if line)
    if rows == 0:
        raise _rejected(source, "header only, no rows")
    if '"' in text:
        # Quoted fields may hold commas or line breaks: let the csv module count fields.
        ragged = _ragged_rows_quoted(text, width, source=source)
    else:
        ragged = _ragged_rows_plain(body, width, offset=first + 2)
    if ragged:
        line_number, fields = ragged[0]
        others = len(ragged) - 1
        more = f" (and {plural(others, 'more line')} of the wrong width)" if others else ""
        raise _rejected(
            source,
            f"line {line_number:,} has {fields} {'field' if fields == 1 else 'fields'}, "
            f"the header has {width}{more}",
        )
    return CsvLayout(header=tuple(header), rows=rows)


def _split_header(line: str, *, source: str, line_number: int) -> list[str]:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration) as exc:
        raise _rejected(source, f"header on line {line_number} is not valid CSV") from exc


def _check_header(header: Sequence[str], *, source: str) -> None:
    if len(header) == 1:
        guessed = [d for d in _OTHER_DELIMITERS if d in header[0]]
        if guessed:
            best = max(guessed, key=header[0].count)
            raise _rejected(
                source,
                f"one column only: is the delimiter {_DELIMITER_NAMES[best]}? The file must be "
                f"comma-separated with {len(COLUMNS)} columns",
            )
        raise _rejected(source, f"one column only; expected {len(COLUMNS)} comma-separated columns")
    wanted = {normalise_name(c) for c in COLUMNS}
    if not any(normalise_name(name) in wanted for name in header):
        raise _rejected(
            source,
            "the first line is not a header row (none of its names is a known column); "
            "add the header line",
        )
    empty = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if empty:
        where = ", ".join(str(i) for i in empty)
        hint = " (a trailing comma?)" if empty == [len(header)] else ""
        raise _rejected(source, f"header has an empty column name at position {where}{hint}")
    duplicated = [name for name, n in Counter(header).items() if n > 1]
    if duplicated:
        raise _rejected(source, f"duplicated header names: {describe_names(duplicated)}")


def _ragged_rows_plain(body: Sequence[str], width: int, *, offset: int) -> list[tuple[int, int]]:
    """(line number, fields) of non-blank rows of the wrong width, for text without quotes.

    Counting commas per line costs about 0.5 s per million rows, a sixth of pandas' own read.
    """
    counts = map(operator.methodcaller("count", ","), body)
    return [
        (offset + i, count + 1)
        for i, (line, count) in enumerate(zip(body, counts, strict=True))
        if count != width - 1 and line
    ]


def _ragged_rows_quoted(text: str, width: int, *, source: str) -> list[tuple[int, int]]:
    reader = csv.reader(io.StringIO(text))
    ragged: list[tuple[int, int]] = []
    seen_header = False
    try:
        for row in reader:
            if not row:
                continue  # blank line: pandas skips it too
            if not seen_header:
                seen_header = True
                continue
            if len(row) != width:
                ragged.append((reader.line_num, len(row)))
    except csv.Error as exc:
        # csv's messages describe the syntax ("unexpected end of data"), not the cell.
        raise _rejected(source, f"malformed CSV near line {reader.line_num}: {exc}") from exc
    return ragged


def _rejected(source: str, problem: str) -> SnapshotRejected:
    return SnapshotRejected(f"Snapshot {source}: {problem}")


def parse_snapshot(payload: bytes, *, source: str) -> pd.DataFrame:
    """Parse CSV bytes with explicit dtypes; blank `TotalCharges` becomes missing.

    The parse guards (above) run first: pandas would read a wrong delimiter,
    duplicated headers or short rows without complaint. Numbers are coerced column by column
    so that text in a numeric column stays visible to the expectation suite (as object dtype)
    instead of failing the whole read.
    """
    shown = redact_uri(source)
    text = decode_snapshot(payload, source=shown)
    check_csv_layout(text, source=shown)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.ParserError as exc:
        raise SnapshotRejected(f"Snapshot {shown}: malformed CSV: {exc}") from exc
    return coerce_types(frame)


def coerce_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast known columns to their schema types; leave uncastable text for validation to report.

    Any frame, not only one read as text: a cell that is not a string is kept as it is
    (`Series.str` would raise on a column without strings, and blank out the others).
    """
    # A shallow copy whose changed columns are replaced: the caller's frame is untouched and a
    # big month's unchanged columns are not copied (a deep copy, or building a new frame, costs
    # the month's size again: 7.2 GB peak for 10M rows, measured).
    frame = frame.copy(deep=False)
    for column in STRING_COLUMNS:
        if column in frame:
            values = frame[column]
            stripped = (
                _strip_categories(values)
                if isinstance(values.dtype, pd.CategoricalDtype)
                else strip_texts(values.astype(object, copy=False))
            )
            if stripped is not values:
                frame[column] = stripped
    for column in (*INTEGER_COLUMNS, *FLOAT_COLUMNS):
        if column not in frame:
            continue
        raw = frame[column]
        if isinstance(raw.dtype, pd.CategoricalDtype):  # text read from Parquet as categories
            raw = frame[column] = raw.astype(object)
        text = strip_texts(raw).replace("", np.nan) if raw.dtype == object else raw
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.isna().sum() > text.isna().sum():
            continue  # text in a numeric column: keep it, the suite reports the type problem
        if column in INTEGER_COLUMNS and numbers.notna().all() and (numbers % 1 == 0).all():
            frame[column] = numbers.astype("int64")
        else:
            frame[column] = numbers.astype("float64")
    return frame


def strip_texts(values: pd.Series) -> pd.Series:
    """Surrounding spaces off every string cell, other cells kept as they are.

    A column of strings is stripped once per distinct value (a month's categorical columns
    have a handful): ~20x faster than per cell on millions of rows.
    """
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return values.map(_strip)  # mixed cells: factorize would merge 1, 1.0 and True
    if len(values) >= _ARROW_CHECK_ROWS and not _any_padded(values):
        return values  # the usual month: nothing to strip, known without a hash table
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    stripped = np.array([u.strip() for u in uniques], dtype=object)
    if len(stripped) == len(uniques) and all(
        a == b for a, b in zip(stripped, uniques, strict=True)
    ):
        return values
    cells = stripped.take(np.where(codes < 0, 0, codes)) if len(stripped) else stripped
    cells = np.where(codes < 0, np.nan, cells) if (codes < 0).any() else cells
    return pd.Series(cells, index=values.index, name=values.name, dtype=object)


#: From this many cells, `strip_texts` first asks Arrow whether any cell needs stripping: a
#: column of distinct values (customer IDs) costs ~0.8 s per million rows to factorize.
_ARROW_CHECK_ROWS = 100_000
#: Every character `str.strip()` removes (`str.isspace`), at either end of a cell.
_WHITESPACE = (
    r"[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
_PADDED = f"^{_WHITESPACE}|{_WHITESPACE}$"


def _any_padded(values: pd.Series) -> bool:
    """Whether any string cell starts or ends with whitespace (nulls are not strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = pa.array(values.to_numpy(), type=pa.string(), from_pandas=True)
    return bool(pc.any(pc.match_substring_regex(cells, _PADDED)).as_py())


def _strip_categories(values: pd.Series) -> pd.Series:
    """`strip_texts` of a categorical column, done on its categories (a handful)."""
    categories = values.cat.categories
    if pd.api.types.infer_dtype(categories, skipna=True) != "string":
        return strip_texts(values.astype(object))
    stripped = categories.str.strip()
    if stripped.equals(categories):
        return values
    if stripped.is_unique:
        return values.cat.rename_categories(stripped)
    return strip_texts(values.astype(object))  # " Yes" and "Yes": one value once stripped


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value
