"""Throughput benchmark: validating and scoring a 1M-customer base, side by side in one run.

    make bench-throughput   # or: uv run python benchmarks/bench_throughput.py [--rows 1000000]

Generates the base (same schema as Telco), trains a small champion with PyCaret, then times the
expectation suite on all rows and chunked scoring to CSV and Parquet. Prints a table and writes
JSON (default benchmarks/results/throughput.json). Targets: validation <= 20 s, scoring <= 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json"
    )
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    from tasks.data.generate import generate_snapshot
    from tasks.decision.campaign import Campaign
    from tasks.decision.holdout import split_holdout
    from tasks.gate.suite import check_snapshot
    from tasks.scoring.batch import write_scores
    from tasks.training.train import train_challenger

    figures: dict[str, object] = {"rows": args.rows}
    started = time.perf_counter()
    base = generate_snapshot("2026-01", rows=args.rows)
    figures["generate_seconds"] = round(time.perf_counter() - started, 2)

    check_snapshot(base.head(1000), source="warm-up")  # GX import and first-use costs
    started = time.perf_counter()
    report = check_snapshot(base, source=f"generated:{args.rows}")
    figures["validate_seconds"] = round(time.perf_counter() - started, 2)
    figures["validate_passed"] = report.success
    figures["peak_rss_mb_after_validate"] = _peak_mb()

    train, _ = split_holdout(generate_snapshot("2025-12", rows=7043), fraction=0.2, seed=42)
    champion = train_challenger.fn(train, seed=42, models=["lr"], folds=3).model
    customers = base.drop(columns=["Churn"])
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("csv", "parquet"):
            started = time.perf_counter()
            summary = write_scores.fn(
                champion, customers, output=Path(tmp) / f"scores.{suffix}", version="1",
                campaign=Campaign(),
            )  # fmt: skip
            figures[f"score_{suffix}_seconds"] = round(time.perf_counter() - started, 2)
            figures[f"score_{suffix}_mb"] = round(Path(summary.output).stat().st_size / 1e6, 1)
    figures["peak_rss_mb"] = _peak_mb()

    rows = args.rows
    print(f"Throughput on {rows:,} generated customers (2 cores)")
    print(f"  generate            {figures['generate_seconds']:>7.2f} s")
    print(
        f"  validate (66 checks){figures['validate_seconds']:>7.2f} s  "
        f"{rows / figures['validate_seconds']:>12,.0f} rows/s  target <= 20 s"  # type: ignore[operator]
    )
    for suffix in ("csv", "parquet"):
        seconds = figures[f"score_{suffix}_seconds"]
        print(
            f"  score -> {suffix:<8}   {seconds:>7.2f} s  {rows / seconds:>12,.0f} rows/s  "  # type: ignore[operator]
            f"target <= 10 s  ({figures[f'score_{suffix}_mb']} MB)"
        )
    print(f"  peak RSS            {figures['peak_rss_mb']:>7,} MB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
