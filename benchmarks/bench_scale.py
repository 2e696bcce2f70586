"""Scale benchmark: the whole retrain on generated months of 70k, 700k, 7M and 10M rows.

    make bench-scale      # or: uv run python benchmarks/bench_scale.py [--rows 70000 700000]

Each month is generated and written to Parquet by its own process first; then each size runs
in a fresh process (so peak memory is that run's own, the generator's not included) with its
own throwaway registry (each is a first promotion, the same work) against one Prefect server
started before the clock. Prints wall time per stage, peak RSS, the rows trained on and held
out, and the exponent b of time ~ rows^b fitted over all sizes and from 700k up (least
squares on log-log). Goals (issue 17): 10M rows in at most 15 min and 8 GB; b <= 0.5 from 700k.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _generate(rows: int, path: Path) -> None:
    """Write a generated month of `rows` customers to Parquet (its own process: its memory)."""
    from tasks.data.generate import generate_snapshot

    generate_snapshot("2026-01", rows=rows).to_parquet(path, index=False, row_group_size=500_000)


def _child(path: Path) -> None:
    """One retrain of the generated month at `path`; prints a JSON line."""
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    started = time.perf_counter()
    record = retrain(RetrainParameters(period="2026-01", data=str(path)))
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    split, sample = record.holdout_split, record.training_sample
    print(
        json.dumps(
            {
                "wall_seconds": round(wall, 2),
                "stage_seconds": record.stage_seconds,
                "peak_rss_mb": round(peak_mb),
                "algorithm": record.challenger.algorithm,
                "holdout_roc_auc": round(record.challenger.holdout["roc_auc"], 4),
                "holdout_rows": split.holdout_rows if split else None,
                "training_rows": sample.rows_used if sample else None,
                "verdict": record.decision.verdict,
                "notes": record.notes,
            }
        )
    )


def _exponent(points: list[tuple[int, float]]) -> float:
    """Slope of log(time) against log(rows)."""
    xs = [math.log(r) for r, _ in points]
    ys = [math.log(max(t, 1e-6)) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def _run_sizes(sizes: list[int], tmp: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """One generator and one retrain process per size, smallest first; stops at a failure."""
    results = []
    for rows in sizes:
        month = tmp / f"month-{rows}.parquet"
        for argv in (["--generate", str(rows)], ["--child", "0"]):
            done = subprocess.run(
                [sys.executable, __file__, *argv, "--parquet", str(month)],
                # A fresh registry per size: every size does the same work (a first promotion).
                env={**env, "CHURN_RETRAIN_HOME": str(tmp / f"state-{rows}")},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                sys.exit(f"{rows} rows failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append({**result, "rows": rows})
        month.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[70_000, 700_000, 7_000_000, 10_000_000]
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(args.generate, args.parquet)
        return
    if args.child is not None:
        _child(args.parquet)
        return

    sys.path.insert(0, str(ROOT))
    from tasks.runtime.prefect_server import PrefectServer

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        os.environ.pop("PREFECT_API_URL", None)
        # One Prefect server for all sizes, up before the clock starts: its boot is not the
        # retrain's cost (benchmarks/bench_overhead.py reports it).
        server = PrefectServer()
        os.environ["PREFECT_API_URL"] = server.start()  # the children's API
        server.wait()
        # A 10M-row month is past the default snapshot limit (512 MiB); a large operator
        # raises it the same way (README: Large months).
        os.environ.setdefault("CHURN_RETRAIN_MAX_SNAPSHOT_BYTES", str(4 * 1024**3))
        try:
            results = _run_sizes(args.rows, Path(tmp), dict(os.environ))
        finally:
            server.stop()

    walls = [(r["rows"], r["wall_seconds"]) for r in results]
    trains = [(r["rows"], r["stage_seconds"]["train"]) for r in results]
    large = [(r, t) for r, t in walls if r >= 700_000]
    summary = {
        "runs": results,
        "exponent_wall": round(_exponent(walls), 3) if len(walls) > 1 else None,
        "exponent_wall_from_700k": round(_exponent(large), 3) if len(large) > 1 else None,
        "exponent_train": round(_exponent(trains), 3) if len(trains) > 1 else None,
    }
    print(
        f"{'rows':>9} {'wall s':>8} {'load':>6} {'valid.':>7} {'train':>7} {'compare':>8} "
        f"{'promote':>8} {'peak MB':>8} {'trained':>8} {'held out':>9} {'model':>6} {'AUC':>7}"
    )
    for r in results:
        st = r["stage_seconds"]
        print(
            f"{r['rows']:>9,} {r['wall_seconds']:>8.1f} {st['load']:>6.1f} {st['validate']:>7.1f} "
            f"{st['train']:>7.1f} {st['compare']:>8.1f} {st['promote']:>8.1f} "
            f"{r['peak_rss_mb']:>8,} {r['training_rows']:>8,} {r['holdout_rows']:>9,} "
            f"{r['algorithm']:>6} {r['holdout_roc_auc']:>7.4f}"
        )
        for note in r["notes"]:
            print(f"{'':>10}{note}")
    print(
        f"time ~ rows^b: b = {summary['exponent_wall']} (whole flow, all sizes), "
        f"{summary['exponent_wall_from_700k']} (from 700k), {summary['exponent_train']} (training)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
