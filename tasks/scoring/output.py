"""Where scores are written: CSV or Parquet by the output's suffix, through `<output>.partial`, so
a failed run never leaves half a file where the previous one was."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

OutputFormat = Literal["csv", "parquet"]
#: An output with one of these suffixes is written as Parquet, any other as CSV.
PARQUET_SUFFIXES = (".parquet", ".pq")


def output_format(path: Path) -> OutputFormat:
    """Parquet for .parquet/.pq, CSV otherwise."""
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"


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
