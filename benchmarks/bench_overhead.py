"""Prefect's overhead on the retrain, and what a temporary Prefect server costs a cold process.

    make bench-overhead   # or: uv run python benchmarks/bench_overhead.py [--csv PATH] [--runs 3]

1. With a Prefect server already running, the real retrain flow runs on the Telco CSV while
   every task's function is timed as it executes (instrumentation, nothing replaced). Overhead =
   flow wall time minus the time inside task functions, as a share of the flow's wall time.
2. A trivial flow in a fresh process, once against the running server and once with none (so
   Prefect starts its temporary server): the difference is what the temporary server costs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
_TRIVIAL = "from prefect import flow\n@flow\ndef noop():\n    return 1\nnoop()\n"


def _instrument(module: Any, spent: list[float]) -> None:
    """Time every Prefect task of `module` while it runs; the task itself is unchanged."""
    from prefect import Task

    for task in [v for v in vars(module).values() if isinstance(v, Task)]:
        original = task.fn

        @functools.wraps(original)
        def timed(*args: Any, __fn: Any = original, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return __fn(*args, **kwargs)
            finally:
                spent.append(time.perf_counter() - started)

        task.fn = timed


def _trivial_flow_seconds(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _TRIVIAL], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "overhead.json"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CHURN_RETRAIN_HOME"] = str(Path(tmp) / "state")
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        Path(tmp, "prefect").mkdir()
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        import flows.retrain as module
        from flows.retrain import RetrainParameters, retrain

        spent: list[float] = []
        _instrument(module, spent)
        runs = []
        with prefect_test_harness(server_startup_timeout=60):
            api_url = PREFECT_API_URL.value()
            retrain(RetrainParameters(period="2025-12", data=str(args.csv)))  # warm imports
            for i in range(args.runs):
                spent.clear()
                started = time.perf_counter()
                retrain(RetrainParameters(period=f"2026-{i + 1:02d}", data=str(args.csv)))
                wall = time.perf_counter() - started
                runs.append({"flow_wall": wall, "in_tasks": sum(spent), "tasks": len(spent)})
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
            with_server = [
                _trivial_flow_seconds({**base_env, "PREFECT_API_URL": api_url}) for _ in range(3)
            ]
        without_server = [_trivial_flow_seconds(base_env) for _ in range(3)]

    overheads = [(r["flow_wall"] - r["in_tasks"]) / r["flow_wall"] for r in runs]
    figures = {
        "runs": runs,
        "overhead_share_median": round(statistics.median(overheads), 4),
        "ratio_flow_to_task_functions": round(
            statistics.median(r["flow_wall"] / r["in_tasks"] for r in runs), 4
        ),
        "trivial_flow_with_server_s": round(statistics.median(with_server), 2),
        "trivial_flow_temporary_server_s": round(statistics.median(without_server), 2),
    }
    figures["temporary_server_cost_s"] = round(
        figures["trivial_flow_temporary_server_s"] - figures["trivial_flow_with_server_s"], 2
    )
    print(f"Prefect overhead on the retrain ({args.csv.name}, server running, {args.runs} runs)")
    for r in runs:
        print(
            f"  flow {r['flow_wall']:6.2f} s, inside {r['tasks']} task functions "
            f"{r['in_tasks']:6.2f} s, overhead {(r['flow_wall'] - r['in_tasks']):5.2f} s"
        )
    print(
        f"  median overhead {figures['overhead_share_median']:.1%} of the flow's wall time "
        f"(flow / task functions = {figures['ratio_flow_to_task_functions']:.3f}); target <= 5%"
    )
    print(
        f"  trivial flow, fresh process: {figures['trivial_flow_with_server_s']:.1f} s with the "
        f"server running, {figures['trivial_flow_temporary_server_s']:.1f} s with a temporary "
        f"server: the temporary server costs {figures['temporary_server_cost_s']:.1f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
