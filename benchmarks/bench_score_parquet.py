"""Streamed scoring benchmark: a Parquet base of 10M customers scored into Parquet, bounded memory.

    uv run python benchmarks/bench_score_parquet.py [--rows 10000000] [--batch-rows 500000]

Generates the base chunk by chunk into one Parquet file (generated_month.py, shared with
bench_scale.py: a ParquetWriter, one row group per chunk; each chunk a different seed, so
distinct customers, with IDs made unique across chunks), trains a small lr champion with
PyCaret, then scores the file with `score_parquet` (what the `score` flow runs for a Parquet
input) once with the suite on every batch and once without, each in a fresh subprocess
whose peak RSS (getrusage RUSAGE_SELF) is its own: imports and the champion included, the
base never loaded. A third run scores it as `score --dask` does (`score_parquet_partitioned`,
validated, a row group per task) on a 2-worker `LocalCluster` in its subprocess: its peak RSS
is the largest of the flow's process and each worker's. Prints a table and writes JSON (default benchmarks/results/score_parquet.json).
Goal: 10M rows in at most 60 s, peak RSS under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from generated_month import PERIOD, month_rows, write_generated_month

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS, GOAL_MB = 60, 2048


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def train_champion(path: Path) -> None:
    """A small lr champion, as bench_throughput.py trains it, pickled for the subprocesses."""
    from tasks.data.generate import generate_snapshot
    from tasks.decision.holdout import split_holdout
    from tasks.training.train import train_challenger

    train, _ = split_holdout(generate_snapshot("2025-12", rows=7043), fraction=0.2, seed=42)
    model = train_challenger.fn(train, seed=42, models=["lr"], folds=3).model
    path.write_bytes(pickle.dumps(model))


def score_in_child(args: argparse.Namespace) -> None:
    """The subprocess: load the champion, score the base, print one JSON line of figures."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from tasks.decision.campaign import Campaign
    from tasks.scoring.batch import ParquetBase, score_parquet

    model = pickle.loads(args.model.read_bytes())
    if args.dask:
        _score_on_dask(args, model)
        return
    ready_mb = _peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    base = ParquetBase(
        str(args.base), PERIOD, batch_rows=args.batch_rows, chunk_rows=args.chunk_rows
    )
    summary = score_parquet.fn(
        model, base, output=args.output, version="1", campaign=Campaign(), validate=args.validate
    )
    figures = {
        "rows": summary.rows,
        "predicted_churners": summary.predicted_churners,
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_mb": _peak_mb(),
        "rss_before_scoring_mb": ready_mb,
        "output_mb": round(args.output.stat().st_size / 1e6, 1),
    }
    print(json.dumps(figures))


def _score_on_dask(args: argparse.Namespace, model: Any) -> None:
    """The validated scoring as `score --dask` runs it: a row group per task, 2 workers here.

    Seconds are `score_parquet_partitioned`'s own (the cluster's and Prefect's start-up are
    not); peak RSS is the largest of the flow's process and each worker's."""
    import logging

    from distributed import LocalCluster
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from tasks.decision.campaign import Campaign
    from tasks.scoring.batch import ParquetBase
    from tasks.scoring.partitions import score_parquet_partitioned

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:

        @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        def score_base() -> Any:
            base = ParquetBase(
                str(args.base), PERIOD, batch_rows=args.batch_rows, chunk_rows=args.chunk_rows
            )
            return score_parquet_partitioned(
                model, base, output=args.output, version="1", campaign=Campaign()
            )

        cpu = time.process_time()
        summary = score_base()
        cpu = time.process_time() - cpu
    workers_mb = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print(
        json.dumps(
            {
                "rows": summary.rows,
                "predicted_churners": summary.predicted_churners,
                "seconds": summary.seconds,
                "cpu_seconds": round(cpu, 2),  # the flow's process only
                "peak_rss_mb": max(_peak_mb(), workers_mb),
                "flow_process_peak_rss_mb": _peak_mb(),
                "worker_peak_rss_mb": workers_mb,
                "output_mb": round(args.output.stat().st_size / 1e6, 1),
            }
        )
    )


def run_scoring(
    base: Path,
    model: Path,
    output: Path,
    *,
    batch_rows: int,
    chunk_rows: int,
    validate: bool,
    dask: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> dict[str, Any]:
    """Score `base` with the pickled `model` in a fresh subprocess; its figures as a dict."""
    command = [
        sys.executable, __file__, "--child", "--base", str(base), "--model", str(model),
        "--output", str(output), "--batch-rows", str(batch_rows), "--chunk-rows", str(chunk_rows),
        *(["--validate"] if validate else []), *(["--dask"] if dask else []),
    ]  # fmt: skip
    load = os.getloadavg()[0]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"scoring subprocess failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["load_average_before"] = round(load, 2)
    return figures


def _run_child(
    args: argparse.Namespace, work: Path, *, validate: bool, dask: bool = False
) -> dict[str, Any]:
    return run_scoring(
        work / "base.parquet", work / "champion.pkl", work / "scores.parquet",
        batch_rows=args.batch_rows, chunk_rows=args.chunk_rows, validate=validate, dask=dask,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    from tasks.scoring.sizes import DEFAULT_BATCH_ROWS, DEFAULT_CHUNK_ROWS

    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, help="rows per batch")
    parser.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows per model call"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the base and champion here (reused when the base "
        "has --rows rows); default: a temporary folder, removed",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "score_parquet.json"
    )
    # The subprocess's own arguments.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--validate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dask", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        score_in_child(args)
        return
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        _benchmark(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-score-parquet-") as tmp:
            _benchmark(args, Path(tmp))


def _benchmark(args: argparse.Namespace, work: Path) -> None:
    import pyarrow.parquet as pq

    base = work / "base.parquet"
    figures: dict[str, Any] = {
        "rows": args.rows, "batch_rows": args.batch_rows, "chunk_rows": args.chunk_rows,
        "cores": os.cpu_count(),
    }  # fmt: skip
    if month_rows(base) == args.rows:
        figures["generate_seconds"] = None  # reused
    else:
        figures["generate_seconds"] = round(
            write_generated_month(base, args.rows, period=PERIOD), 1
        )
    figures["generate_peak_rss_mb"] = _peak_mb()
    figures["base_mb"] = round(base.stat().st_size / 1e6, 1)
    figures["row_groups"] = pq.ParquetFile(base).metadata.num_row_groups
    if not (work / "champion.pkl").is_file():
        train_champion(work / "champion.pkl")
    runs = {
        "without validation": _run_child(args, work, validate=False),
        "validated per batch": _run_child(args, work, validate=True),
        "validated, 2 Dask workers": _run_child(args, work, validate=True, dask=True),
    }
    figures["runs"] = runs
    if len({(r["rows"], r["predicted_churners"]) for r in runs.values()}) != 1:
        raise SystemExit(f"the two runs disagree: {runs}")

    print(
        f"Streamed scoring, Parquet -> Parquet: {args.rows:,} generated customers "
        f"({figures['base_mb']} MB, {figures['row_groups']} row groups), batches of "
        f"{args.batch_rows:,}, model calls of {args.chunk_rows:,}, {os.cpu_count()} cores"
    )
    print(f"  {'':<26}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}{'CPU s':>9}")
    for name, run in runs.items():
        print(
            f"  {name:<26}{run['rows']:>12,}{run['seconds']:>10.1f}"
            f"{run['rows'] / run['seconds']:>12,.0f}{run['peak_rss_mb']:>13,}"
            f"{run['cpu_seconds']:>9.1f}   (load {run['load_average_before']:.1f} before)"
            + (
                f", largest worker {run['worker_peak_rss_mb']:,} MB"
                if "worker_peak_rss_mb" in run
                else ""
            )
        )
    print(f"  {'goal':<26}{args.rows:>12,}{GOAL_SECONDS:>10}{'':>12}{'< ' + str(GOAL_MB):>13}")
    validation = runs["validated per batch"]["seconds"] - runs["without validation"]["seconds"]
    print(
        f"  per-batch validation costs {validation:.1f} s "
        f"({validation / args.rows * 1e6:.2f} s per million rows); peak RSS before scoring "
        f"(imports, champion): {runs['without validation']['rss_before_scoring_mb']:,} MB"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
