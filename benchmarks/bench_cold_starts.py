"""Many cold `churn-retrain run` starts in a row: does any of them die while starting up?

    make bench-cold-starts        # or: uv run python benchmarks/bench_cold_starts.py [--runs 100]

Each run is a fresh process on a fresh state directory (so it starts its own Prefect server and
creates both databases) on a small generated month with fast settings. By default a run counts
as started once its flow has loaded the month (the server is up, the training imports are
warm, the flow and its first tasks ran); it is then stopped with SIGTERM, which must end it
within 60 s. `--whole` lets every run finish instead (exit status 0 expected). A start-up race
shows as a run that exits before it started (e.g. the `KeyError: 'OPENBLAS_MAIN_FREE'` of
issue 13, once in about 28 runs when training imports were warmed in a helper thread). Prints
each failure's last lines and a summary; writes JSON (default benchmarks/results/cold_starts.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "--data",
    "generated",
    "--generated-rows",
    "500",
    "--models",
    "lr",
    "--folds",
    "2",
    "--json",
]


#: Logged once the flow has loaded the month: everything a start involves has happened.
STARTED = "Task run 'load-snapshot"


def _one(timeout: float, whole: bool) -> tuple[str, float, str]:
    """('ok' | a failure description, seconds, the last lines of stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CHURN_RETRAIN_HOME": str(Path(tmp) / "state")}
        env.pop("PREFECT_API_URL", None)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "--period", "2026-01", *FAST],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        lines: list[str] = []
        timer = threading.Timer(timeout, process.kill)  # bounds the whole run, reads included
        timer.start()
        try:
            for line in process.stderr:
                lines.append(line.rstrip())
                if not whole and STARTED in line:
                    process.send_signal(signal.SIGTERM)
                    break
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                return "did not stop within 60 s of SIGTERM", time.perf_counter() - started, ""
        finally:
            timer.cancel()
        took = time.perf_counter() - started
        tail = "\n".join(lines[-5:])
        if whole:
            return ("ok" if code == 0 else f"exit {code}"), took, tail
        if not any(STARTED in line for line in lines):
            return f"exit {code} before the flow started", took, tail
        return "ok", took, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--whole", action="store_true", help="let every run finish")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/cold_starts.json")
    args = parser.parse_args()
    outcomes, seconds = [], []
    for index in range(1, args.runs + 1):
        outcome, took, tail = _one(args.timeout, args.whole)
        outcomes.append(outcome)
        seconds.append(round(took, 2))
        print(f"run {index:3d}: {outcome} in {took:5.1f} s", flush=True)
        if outcome != "ok":
            print("  " + tail.replace("\n", "\n  "), flush=True)
    failed = sum(outcome != "ok" for outcome in outcomes)
    summary = {
        "runs": args.runs,
        "mode": "whole runs" if args.whole else "starts (stopped with SIGTERM once started)",
        "failed": failed,
        "failures": [outcome for outcome in outcomes if outcome != "ok"],
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
        "seconds": seconds,
    }
    print(
        f"\n{args.runs} cold starts: {failed} failed; median {summary['median_seconds']:.1f} s, "
        f"max {summary['max_seconds']:.1f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
