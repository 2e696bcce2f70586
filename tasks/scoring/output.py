"""Where scores are written: CSV or Parquet by the output's suffix, through `<output>.partial`, so
a failed run never leaves half a file where the previous one was."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from tasks.errors import UsageError
from tasks.messages import join_words

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

OutputFormat = Literal["csv", "parquet"]
#: The output's extension says how it is written; no other is written (an .xlsx would get CSV).
OUTPUT_FORMATS: dict[str, OutputFormat] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def unsupported_output(path: str | Path) -> str | None:
    """Why scores cannot be written to `path` (its extension), or None when they can."""
    suffix = Path(path).suffix.lower()
    if suffix in OUTPUT_FORMATS:
        return None
    which = f"extension {suffix}" if suffix else "no extension"
    return f"the output has {which}; scores are written as {join_words(list(OUTPUT_FORMATS))}"


def output_format(path: Path) -> OutputFormat:
    """CSV for .csv, Parquet for .parquet/.pq; `UsageError` for any other extension."""
    problem = unsupported_output(path)
    if problem is not None:
        raise UsageError(problem)
    return OUTPUT_FORMATS[path.suffix.lower()]


class TableWriter:
    """Arrow tables appended to `<output>.partial` (Arrow writes both formats; its CSV writer
    is ~5x faster than pandas' `to_csv`); `commit` renames it over `output`.

    As a context manager: whatever happens, the partial file is closed and removed.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        self.partial = output.with_name(output.name + ".partial")
        self._writer: pacsv.CSVWriter | pq.ParquetWriter | None = None

    @property
    def written(self) -> bool:
        """Whether any table was written."""
        return self._writer is not None

    def write(self, table: pa.Table) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self._writer is None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self._writer = (
                pacsv.CSVWriter(self.partial, table.schema)
                if output_format(self.output) == "csv"
                else pq.ParquetWriter(self.partial, table.schema)
            )
        self._writer.write_table(table)

    def commit(self) -> None:
        """Close the file and put it where `output` is."""
        self._close()
        self.partial.replace(self.output)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)
