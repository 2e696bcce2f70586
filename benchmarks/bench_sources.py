"""Source benchmark: one generated month as CSV and as Parquet, loaded and retrained side by side.

    make bench-sources    # or: uv run python benchmarks/bench_sources.py [--rows 2000000]

The month is generated once and written both ways. Then, alternating CSV and Parquet so both
see the same machine load, each repetition loads the month in a fresh process (load_snapshot:
read, guards, types, digest; wall time and peak RSS of that process), and finally the whole
retrain flow runs once per format, each in a fresh process with its own registry. Prints one
JSON line per measurement and a summary with the Parquet/CSV ratios.
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


def _write(rows: int, folder: Path) -> None:
    from tasks.data.generate import generate_snapshot

    frame = generate_snapshot(PERIOD, rows=rows, seed=42)
    frame.to_csv(folder / "month.csv", index=False)
    frame.to_parquet(folder / "month.parquet", index=False)
    print(json.dumps({"written": len(frame)}))


def _load(location: str) -> None:
    from tasks.data.load import load_snapshot
    from tasks.data.request import SnapshotRequest

    started = time.perf_counter()
    snapshot = load_snapshot.fn(SnapshotRequest(location, PERIOD))
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"load_seconds": round(wall, 2), "peak_rss_mb": round(peak),
                      "rows": snapshot.rows, "digest": snapshot.digest}))  # fmt: skip


def _retrain(location: str) -> None:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    started = time.perf_counter()
    record = retrain(RetrainParameters(period=PERIOD, data=location))
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_seconds": round(wall, 1), "peak_rss_mb": round(peak),
                      "stage_seconds": record.stage_seconds, "verdict": record.verdict,
                      "digest": record.data_digest}))  # fmt: skip


def _child(*args: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        check=False, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-retrain", action="store_true", help="Loads only.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", "GX_ANALYTICS_ENABLED": "false"}
    started = time.perf_counter()
    _child("--write", str(args.rows), str(work), env=env)
    sizes = {f: (work / f"month.{f}").stat().st_size for f in ("csv", "parquet")}
    print(json.dumps({"rows": args.rows, "generated_seconds": round(time.perf_counter() - started),
                      "csv_mb": round(sizes["csv"] / 2**20), "parquet_mb": round(sizes["parquet"] / 2**20)}))  # fmt: skip
    loads: dict[str, list[dict[str, Any]]] = {"csv": [], "parquet": []}
    for repeat in range(args.repeats):
        for kind in ("csv", "parquet") if repeat % 2 == 0 else ("parquet", "csv"):
            result = _child("--load", str(work / f"month.{kind}"), env=env)
            loads[kind].append(result)
            print(json.dumps({"format": kind, **result}))
    summary: dict[str, Any] = {"rows": args.rows}
    for kind, results in loads.items():
        seconds = statistics.median(r["load_seconds"] for r in results)
        summary[f"{kind}_load_seconds_median"] = round(seconds, 2)
        summary[f"{kind}_load_peak_rss_mb_median"] = statistics.median(
            r["peak_rss_mb"] for r in results
        )
    summary["same_digest"] = len({r["digest"] for rs in loads.values() for r in rs}) == 1
    summary["load_time_ratio_parquet_over_csv"] = round(
        summary["parquet_load_seconds_median"] / summary["csv_load_seconds_median"], 2
    )
    summary["load_memory_ratio_parquet_over_csv"] = round(
        summary["parquet_load_peak_rss_mb_median"] / summary["csv_load_peak_rss_mb_median"], 2
    )
    if not args.no_retrain:
        for kind in ("parquet", "csv"):
            home = work / f"home-{kind}"
            result = _child("--retrain", str(work / f"month.{kind}"),
                            env={**env, "CHURN_RETRAIN_HOME": str(home)})  # fmt: skip
            print(json.dumps({"format": kind, "retrain": result}))
            summary[f"{kind}_retrain_seconds"] = result["wall_seconds"]
            summary[f"{kind}_retrain_peak_rss_mb"] = result["peak_rss_mb"]
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--write", "--load", "--retrain"):
        sys.path.insert(0, str(ROOT))
        what, *rest = sys.argv[1:]
        if what == "--write":
            _write(int(rest[0]), Path(rest[1]))
        elif what == "--load":
            _load(rest[0])
        else:
            _retrain(rest[0])
    else:
        main()
