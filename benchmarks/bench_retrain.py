"""Retrain benchmark on the real Telco CSV: stage times, AUC, and the cold CLI run side by side.

    make bench            # or: uv run python benchmarks/bench_retrain.py [--csv PATH] [--json OUT]

Runs in a throwaway state directory, so the user's registry is never touched. Prints a table and
writes the figures as JSON (default benchmarks/results/retrain.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"


def _cli_run(csv: Path, home: Path, period: str) -> tuple[float, dict[str, object]]:
    """One `churn-retrain run` in a fresh process (the Prefect server it starts included)."""
    env = {**os.environ, "CHURN_RETRAIN_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "run",
            "--data",
            str(csv),
            "--period",
            period,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"CLI run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "retrain.json"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "state"
        first_wall, first = _cli_run(args.csv, home, "2026-01")
        second_wall, second = _cli_run(args.csv, home, "2026-02")

    results = {
        "csv": str(args.csv),
        "rows": first["rows"],
        "runs": [
            {
                "label": label,
                "cli_wall_seconds": round(wall, 2),
                "stage_seconds": record["stage_seconds"],
                "verdict": record["verdict"],
                "challenger_algorithm": record["challenger"]["algorithm"],
                "challenger_cv_roc_auc": record["challenger"]["cv"]["roc_auc"],
                "challenger_holdout_roc_auc": record["challenger"]["holdout"]["roc_auc"],
                "champion_holdout_roc_auc": (record["champion"] or {})
                .get("holdout", {})
                .get("roc_auc"),
            }
            for label, wall, record in (
                ("first (no champion)", first_wall, first),
                ("second (vs champion)", second_wall, second),
            )
        ],
    }
    stages = ["load", "validate", "train", "compare", "promote", "report"]
    print(f"Retrain on {args.csv.name}: {results['rows']:,} rows, 2 runs in fresh processes")
    print(
        f"{'run':<22}{'CLI wall':>9}"
        + "".join(f"{s:>10}" for s in stages)
        + f"{'CV AUC':>9}{'holdout':>9}  verdict"
    )
    for run in results["runs"]:
        st = run["stage_seconds"]
        print(
            f"{run['label']:<22}{run['cli_wall_seconds']:>8.1f}s"
            + "".join(f"{st.get(s, 0):>9.2f}s" for s in stages)
            + f"{run['challenger_cv_roc_auc']:>9.4f}{run['challenger_holdout_roc_auc']:>9.4f}  {run['verdict']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
