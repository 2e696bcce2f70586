"""Generated months of any size as Parquet, streamed: one chunk of customers in memory at a time.

    uv run python benchmarks/generated_month.py --rows 100000000 --out /work/bench_months/m.parquet

`generate_snapshot` builds a month in memory and stops at 10M rows. The benchmarks need more:
`write_generated_month` generates `chunk_rows` customers at a time (chunk c from seed 1000 + c,
so each chunk holds other customers) and writes each chunk as one Parquet row group through a
pyarrow `ParquetWriter`, so memory stays that of one chunk whatever the size. Within a seed
the IDs are unique, across seeds they could meet, so they are renumbered: chunk c's IDs are
"cccc-XXXXX" (the chunk's number, then the row in base 26), the public format the suite reads.
Rows are Telco-shaped as `generate_snapshot` makes them for the given period (the retrain must
be run for that same period). The file is written under a temporary name and renamed when
complete, so an interrupted run never leaves a file that looks finished.
Used by bench_scale.py (the retrain's months) and bench_score_parquet.py (the scored base).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

PERIOD = "2026-01"
CHUNK_ROWS = 500_000  # customers generated (and written as one row group) at a time
_MAX_CHUNKS = 10_000  # the four digits of the ID
_LETTERS = 5  # the five letters of the ID hold the row within its chunk
MAX_ROWS = _MAX_CHUNKS * CHUNK_ROWS


def unique_ids(chunk: int, rows: int) -> Any:
    """IDs in the public format, "0042-ABCDE": the chunk's number, then the row in base 26."""
    import numpy as np

    if not 0 <= chunk < _MAX_CHUNKS or not 0 <= rows <= 26**_LETTERS:
        raise ValueError(f"chunk {chunk} of {rows:,} rows does not fit the ID format")
    n = np.arange(rows, dtype=np.int64)
    chars = np.empty((rows, 10), dtype=np.uint8)
    chars[:, :5] = np.frombuffer(f"{chunk:04d}-".encode(), dtype=np.uint8)
    for position in range(_LETTERS):
        chars[:, 9 - position] = ord("A") + n % 26
        n //= 26
    return chars.view("S10").ravel().astype(str).astype(object)


def write_generated_month(
    path: Path, rows: int, *, period: str = PERIOD, chunk_rows: int = CHUNK_ROWS
) -> float:
    """Write `rows` generated customers of `period` to `path`; returns the seconds it took."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tasks.data.generate import generate_snapshot
    from tasks.data.schema import ID_COLUMN

    chunks = -(-rows // chunk_rows) if rows > 0 and chunk_rows > 0 else 0
    if not 1 <= chunks <= _MAX_CHUNKS or chunk_rows > 26**_LETTERS:
        raise ValueError(
            f"rows must be between 1 and {_MAX_CHUNKS * chunk_rows:,} in chunks of at "
            f"most {26**_LETTERS:,}, got {rows:,} in chunks of {chunk_rows:,}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    started = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in range(chunks):
            # A snapshot is the first `rows` slots of its seed: another seed per chunk gives
            # other customers; their IDs could meet across seeds, so they are renumbered.
            size = min(chunk_rows, rows - chunk * chunk_rows)
            frame = generate_snapshot(period, seed=1000 + chunk, rows=size)
            frame[ID_COLUMN] = unique_ids(chunk, size)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            del frame
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            del table
        assert writer is not None
        writer.close()
        writer = None
        os.replace(partial, path)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return time.perf_counter() - started


def month_path(directory: Path, rows: int, *, period: str = PERIOD) -> Path:
    """Where a generated month of `rows` customers is kept in `directory`."""
    return directory / f"generated-{period}-{rows}.parquet"


def month_rows(path: Path) -> int | None:
    """Rows in the Parquet file at `path`; None when there is no readable file."""
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError):  # missing, or not Parquet (pyarrow raises ArrowInvalid)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the Parquet file to write")
    parser.add_argument("--period", default=PERIOD)
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    args = parser.parse_args()
    seconds = write_generated_month(
        args.out, args.rows, period=args.period, chunk_rows=args.chunk_rows
    )
    print(json.dumps(generation_figures(args.out, seconds)))


def generation_figures(path: Path, seconds: float) -> dict[str, Any]:
    """Seconds, this process's peak RSS, and the file's size, rows and row groups."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    return {
        "rows": metadata.num_rows,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "row_groups": metadata.num_row_groups,
    }


if __name__ == "__main__":
    main()
