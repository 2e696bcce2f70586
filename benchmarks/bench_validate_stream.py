"""Validating a month in chunks: today's whole-frame suite vs the chunked and streaming paths.

    uv run python benchmarks/bench_validate_stream.py [--rows 1000000] [--large-rows 10000000]

Writes generated months as Parquet with a ParquetWriter, one generator chunk at a time (the
generator never holds the whole month; customer IDs get the chunk's number so they stay unique
across chunks, which `generate_snapshot` with another seed would not guarantee). Then, each in
a fresh process (wall time and peak RSS of that process, `ru_maxrss`), alternating so every
path sees the same machine load:

- whole:   `load_snapshot` + `check_snapshot` on the whole frame (today's path);
- chunked: `load_snapshot` + `check_in_chunks` on the same frame (the new validation in memory);
- stream:  `validate_parquet` (read, type and validate chunk by chunk; never the whole month);
- gate:    `validate_streamed` (stream + digest + drift columns: what `churn-retrain validate`
           runs on Parquet), at the large size only.

Validation times exclude GX's import and first use (a 1,000-row warm-up in each process). The
whole-frame path is not run on the large month: its frame alone would need ~12 GB. Prints a
table and writes JSON (default benchmarks/results/validate_stream.json). The machine may be
shared: compare paths measured in the same run, not with other days.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PERIOD = "2026-01"


def _write_month(path: Path, rows: int, chunk: int) -> dict[str, Any]:
    """`rows` generated customers written in row groups of `chunk`, never more in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tasks.data.generate import generate_snapshot

    started = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    try:
        for number, start in enumerate(range(0, rows, chunk)):
            frame = generate_snapshot(PERIOD, seed=number, rows=min(chunk, rows - start))
            # IDs are unique within one seed; the prefix keeps them unique across seeds.
            frame["customerID"] = f"{number:04d}-" + frame["customerID"]
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return {
        "rows": rows,
        "row_group_rows": chunk,
        "bytes": path.stat().st_size,
        "write_seconds": round(time.perf_counter() - started, 1),
    }


def _child(mode: str, path: str, chunk_rows: int, max_bytes: int) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from tasks.data.generate import generate_snapshot
    from tasks.data.load import load_snapshot
    from tasks.data.request import SnapshotRequest
    from tasks.gate.chunks import check_in_chunks
    from tasks.gate.month import MonthRead, validate_streamed
    from tasks.gate.stream import validate_parquet
    from tasks.gate.suite import check_snapshot

    check_snapshot(generate_snapshot(PERIOD, rows=1000), source="warm-up")
    figures: dict[str, Any] = {"mode": mode}
    started = time.perf_counter()
    if mode in ("whole", "chunked"):
        snapshot = load_snapshot.fn(SnapshotRequest(path, PERIOD), max_bytes=max_bytes)
        loaded = time.perf_counter()
        figures["load_seconds"] = round(loaded - started, 2)
        if mode == "whole":
            report = check_snapshot(snapshot.frame, source=snapshot.source)
        else:
            report = check_in_chunks(snapshot.frame, source=snapshot.source, chunk_rows=chunk_rows)
        figures["validate_seconds"] = round(time.perf_counter() - loaded, 2)
    elif mode == "stream":
        report = validate_parquet(path, period=PERIOD, chunk_rows=chunk_rows, max_bytes=max_bytes)
        figures["validate_seconds"] = round(time.perf_counter() - started, 2)
    else:
        month = validate_streamed.fn(
            MonthRead(path, PERIOD, chunk_rows=chunk_rows, max_bytes=max_bytes)
        )
        report = month.validation
        figures["digest"] = month.digest
        figures["validate_seconds"] = round(time.perf_counter() - started, 2)
    figures["total_seconds"] = round(time.perf_counter() - started, 2)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    figures["rows"] = report.rows
    figures["summary"] = report.summary()
    return figures


def _run(mode: str, path: Path, chunk_rows: int, max_bytes: int) -> dict[str, Any]:
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", "GX_ANALYTICS_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), "--chunk-rows", str(chunk_rows),
         "--max-bytes", str(max_bytes)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=7200,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{mode} on {path.name} failed:\n{done.stderr[-3000:]}")
    figures = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    figures["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large-rows", type=int, default=10_000_000, help="0 to skip")
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: the module's")
    parser.add_argument("--write-rows", type=int, default=500_000, help="generator chunk")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each 1M-row path")
    parser.add_argument("--max-bytes", type=int, default=4 * 1024**3, help="size limit passed")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "validate_stream.json"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.chunk_rows is None:
        from tasks.gate.chunk_suite import DEFAULT_CHUNK_ROWS

        args.chunk_rows = DEFAULT_CHUNK_ROWS
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.chunk_rows, args.max_bytes)))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-validate-stream-"))
    results: dict[str, Any] = {"chunk_rows": args.chunk_rows, "cpus": os.cpu_count(), "files": {}}
    small = work / "small.parquet"
    results["files"]["small"] = _write_month(small, args.rows, args.write_rows)
    print(json.dumps(results["files"]["small"]), flush=True)
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        for mode in ("whole", "chunked", "stream"):
            runs.append(_run(mode, small, args.chunk_rows, args.max_bytes))
    if args.large_rows:
        large = work / "large.parquet"
        results["files"]["large"] = _write_month(large, args.large_rows, args.write_rows)
        print(json.dumps(results["files"]["large"]), flush=True)
        for mode in ("stream", "gate"):
            runs.append(_run(mode, large, args.chunk_rows, args.max_bytes))
            large_rows = runs[-1]["rows"]
        large.unlink()
    small.unlink()
    work.rmdir()
    results["runs"] = runs

    print()
    print(f"Validation, {args.chunk_rows:,}-row chunks, {os.cpu_count()} CPUs (best of each path)")
    print(
        f"{'path':<10}{'rows':>12}{'validate s':>12}{'load+validate s':>17}{'peak RSS MB':>13}  result"
    )
    table = []
    for mode in ("whole", "chunked", "stream", "gate"):
        for rows in sorted({r["rows"] for r in runs if r["mode"] == mode}):
            same = [r for r in runs if r["mode"] == mode and r["rows"] == rows]
            best = min(same, key=lambda r: r["validate_seconds"])
            row = {
                "path": mode,
                "rows": rows,
                "validate_seconds": best["validate_seconds"],
                "validate_seconds_all": [r["validate_seconds"] for r in same],
                "total_seconds": best["total_seconds"],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in same),
                "result": best["summary"].splitlines()[0],
            }
            table.append(row)
            print(
                f"{mode:<10}{rows:>12,}{row['validate_seconds']:>12.2f}{row['total_seconds']:>17.2f}"
                f"{row['peak_rss_mb']:>13,}  {row['result']}"
            )
    results["table"] = table
    whole = [r["validate_seconds"] for r in runs if r["mode"] == "whole"]
    chunked = [r["validate_seconds"] for r in runs if r["mode"] == "chunked"]
    if whole and chunked:
        ratio = statistics.median(whole) / statistics.median(chunked)
        results["whole_over_chunked_median"] = round(ratio, 2)
        print(f"whole / chunked validation time (medians): {ratio:.2f}x")
    if args.large_rows:
        results["large_rows"] = large_rows
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
