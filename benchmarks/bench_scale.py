"""Scale benchmark: the whole retrain on generated months of 7k, 70k and 700k rows.

    make bench-scale      # or: uv run python benchmarks/bench_scale.py [--rows 7043 70000 700000]

Each size runs in a fresh process (so peak memory is that run's own) with its own throwaway
registry (each is a first promotion, the same work) against one Prefect server started before the
clock, and prints wall time per stage, peak RSS, the training plan, and the exponent b of
time ~ rows^b fitted over the sizes (least squares on log-log).
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


def _child(rows: int, csv: Path) -> None:
    """One retrain of a generated month with `rows` customers; prints a JSON line."""
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain
    from tasks.data.generate import generate_snapshot

    generate_snapshot("2026-01", rows=rows).to_csv(csv, index=False)
    started = time.perf_counter()
    record = retrain(RetrainParameters(period="2026-01", data=str(csv)))
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": rows,
                "wall_seconds": round(wall, 2),
                "stage_seconds": record.stage_seconds,
                "peak_rss_mb": round(peak_mb),
                "algorithm": record.challenger.algorithm,
                "holdout_roc_auc": round(record.challenger.holdout["roc_auc"], 4),
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
    """One child process per size, smallest first; stops at the first failure."""
    results = []
    for rows in sizes:
        csv = tmp / f"month-{rows}.csv"
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(rows), "--csv", str(csv)],
            # A fresh registry per size: every size does the same work (a first promotion).
            env={**env, "CHURN_RETRAIN_HOME": str(tmp / f"state-{rows}")},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"{rows} rows failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        csv.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[7043, 70_000, 700_000])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.csv)
        return

    sys.path.insert(0, str(ROOT))
    from flows.prefect_server import PrefectServer

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        os.environ.pop("PREFECT_API_URL", None)
        # One Prefect server for all sizes, up before the clock starts: its boot is not the
        # retrain's cost (benchmarks/bench_overhead.py reports it).
        server = PrefectServer()
        os.environ["PREFECT_API_URL"] = server.start()  # the children's API
        server.wait()
        try:
            results = _run_sizes(args.rows, Path(tmp), dict(os.environ))
        finally:
            server.stop()

    walls = [(r["rows"], r["wall_seconds"]) for r in results]
    trains = [(r["rows"], r["stage_seconds"]["train"]) for r in results]
    summary = {
        "runs": results,
        "exponent_wall": round(_exponent(walls), 3) if len(walls) > 1 else None,
        "exponent_train": round(_exponent(trains), 3) if len(trains) > 1 else None,
    }
    print(
        f"{'rows':>9} {'wall s':>8} {'load':>6} {'valid.':>7} {'train':>7} {'compare':>8} "
        f"{'promote':>8} {'peak MB':>8} {'model':>9} {'AUC':>7}"
    )
    for r in results:
        st = r["stage_seconds"]
        print(
            f"{r['rows']:>9,} {r['wall_seconds']:>8.1f} {st['load']:>6.1f} {st['validate']:>7.1f} "
            f"{st['train']:>7.1f} {st['compare']:>8.1f} {st['promote']:>8.1f} "
            f"{r['peak_rss_mb']:>8,} {r['algorithm']:>9} {r['holdout_roc_auc']:>7.4f}"
        )
        for note in r["notes"]:
            print(f"{'':>10}{note}")
    print(
        f"time ~ rows^b: b = {summary['exponent_wall']} (whole flow in-process), "
        f"{summary['exponent_train']} (training stage)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
