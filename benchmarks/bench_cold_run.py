"""A cold monthly retrain against its imports: how much the command costs beyond loading its stack.

    make bench-cold-run        # or: uv run python benchmarks/bench_cold_run.py [--pairs 5]

One state directory; a first `churn-retrain run` on the real Telco CSV makes the champion (not
timed). Then, alternately, in fresh processes: a bare
`python -c "import pycaret.classification, great_expectations, mlflow, prefect"`, a monthly
`churn-retrain run` on the real CSV against that champion, and a `churn-retrain validate` of the
CSV. Alternating means each pair meets the same machine load (this machine is shared and noisy).
Prints each triple, the medians and the ratios run/imports and validate/imports; writes JSON
(default benchmarks/results/cold_run.json). Goals (issue 33): run at most 2.0x, validate 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
IMPORTS = "import pycaret.classification, great_expectations, mlflow, prefect"


def _timed(args: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cold_run.json")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CHURN_RETRAIN_HOME": str(Path(tmp) / "state")}
        env.pop("PREFECT_API_URL", None)
        data = ["--data", str(args.csv)]
        _timed([*cli, "run", "--period", "2026-01", *data], env, 900)  # the champion
        rows = []
        for pair in range(args.pairs):
            period = f"2026-{pair + 2:02d}"
            # Elsewhere than the checkout: importing PyCaret writes logs.log where it runs.
            imports = _timed([sys.executable, "-c", IMPORTS], env, 300, cwd=Path(tmp))
            run = _timed([*cli, "run", "--period", period, *data], env, 900)
            validate = _timed([*cli, "validate", "--period", period, *data], env, 300)
            rows.append({"imports": imports, "run": run, "validate": validate})
            print(
                f"pair {pair + 1}: imports {imports:5.1f} s  run {run:5.1f} s ({run / imports:.2f}x)"
                f"  validate {validate:5.1f} s ({validate / imports:.2f}x)",
                flush=True,
            )
    medians = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    ratios = {
        "run": medians["run"] / medians["imports"],
        "validate": medians["validate"] / medians["imports"],
    }
    print(
        f"medians of {args.pairs}: imports {medians['imports']:.1f} s, run {medians['run']:.1f} s, "
        f"validate {medians['validate']:.1f} s; run/imports {ratios['run']:.2f}x (goal 2.0), "
        f"validate/imports {ratios['validate']:.2f}x (goal 1.5)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"pairs": rows, "medians": medians, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
