"""Prefect's overhead on the retrain, and what a temporary Prefect server costs a cold process.

    make bench           # or: uv run python benchmarks/bench_overhead.py [--csv PATH] [--runs 5]

1. With a Prefect server already running, the retrain on the Telco CSV runs in turn as the
   Prefect flow, as the flow with flow-run heartbeats off, and as the same flow body with every
   task replaced by its plain function, in one process (so imports, caches and the machine's
   load are shared). Overhead = (flow wall time - direct wall time) / flow wall time; the ratio
   of the two is reported too. Heartbeats are Prefect's default (every 180 s); stopping their
   thread at the end of a flow waits up to 1 s, so they are measured apart.
2. A trivial flow in a fresh process, once against the running server and once with none (so
   Prefect starts its temporary server): the difference is what the temporary server costs.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
_TRIVIAL = "from prefect import flow\n@flow\ndef noop():\n    return 1\nnoop()\n"


class _Direct:
    """A task's plain function; `.submit(...).result()` calls it in place."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> SimpleNamespace:
        value = self.fn(*args, **kwargs)
        return SimpleNamespace(result=lambda: value)


@contextmanager
def _tasks_as_functions() -> Iterator[int]:
    """Replace every Prefect task the flow can reach by its plain function, then restore them."""
    from prefect import Task

    swapped = []
    for name, module in list(sys.modules.items()):
        if name == "flows.retrain" or name.startswith("tasks."):
            for attr, value in list(vars(module).items()):
                if isinstance(value, Task):
                    swapped.append((module, attr, value))
                    setattr(module, attr, _Direct(value.fn))
    try:
        yield len(swapped)
    finally:
        for module, attr, value in swapped:
            setattr(module, attr, value)


def _trivial_flow_seconds(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _TRIVIAL], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "overhead.json"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CHURN_RETRAIN_HOME"] = str(Path(tmp) / "state")
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        Path(tmp, "prefect").mkdir()
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )
        from prefect.testing.utilities import prefect_test_harness

        from flows.retrain import RetrainParameters, retrain

        runs = []
        with prefect_test_harness(server_startup_timeout=60):
            api_url = PREFECT_API_URL.value()
            retrain(RetrainParameters(period="2025-11", data=str(args.csv)))  # first: registers
            retrain(RetrainParameters(period="2025-12", data=str(args.csv)))  # warm: a tie
            arms = ("direct", "flow", "flow, no heartbeats")
            for i in range(args.runs):
                # Same work each time: a champion exists, the data are the same, a new period.
                # The order rotates so no arm always runs on a cooler machine.
                timed = {}
                for k, arm in enumerate(arms[i % 3 :] + arms[: i % 3]):
                    period = f"{2026 + k}-{i + 1:02d}"
                    params = RetrainParameters(period=period, data=str(args.csv))
                    started = time.perf_counter()
                    if arm == "direct":
                        with _tasks_as_functions() as swapped:
                            retrain.fn(params)
                    elif arm == "flow":
                        retrain(params)
                    else:
                        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                            retrain(params)
                    timed[arm] = time.perf_counter() - started
                runs.append(
                    {
                        "flow_wall": timed["flow"],
                        "flow_no_heartbeats_wall": timed["flow, no heartbeats"],
                        "direct_wall": timed["direct"],
                        "tasks": swapped,
                    }
                )
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
            with_server = [
                _trivial_flow_seconds({**base_env, "PREFECT_API_URL": api_url}) for _ in range(3)
            ]
        without_server = [_trivial_flow_seconds(base_env) for _ in range(3)]

    overheads = [(r["flow_wall"] - r["direct_wall"]) / r["flow_wall"] for r in runs]
    quiet = [
        (r["flow_no_heartbeats_wall"] - r["direct_wall"]) / r["flow_no_heartbeats_wall"]
        for r in runs
    ]
    figures = {
        "runs": runs,
        "overhead_share_median": round(statistics.median(overheads), 4),
        "overhead_share_no_heartbeats_median": round(statistics.median(quiet), 4),
        "ratio_flow_to_direct": round(
            statistics.median(r["flow_wall"] / r["direct_wall"] for r in runs), 4
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
            f"  flow {r['flow_wall']:6.2f} s, same body with {r['tasks']} tasks as plain "
            f"functions {r['direct_wall']:6.2f} s, overhead {r['flow_wall'] - r['direct_wall']:5.2f} s"
            f" ({r['flow_no_heartbeats_wall'] - r['direct_wall']:5.2f} s without heartbeats)"
        )
    print(
        f"  median overhead {figures['overhead_share_median']:.1%} of the flow's wall time "
        f"(flow / direct = {figures['ratio_flow_to_direct']:.3f}); target <= 5%"
    )
    print(
        f"  without flow-run heartbeats (as the CLI's temporary-server runs): median "
        f"{figures['overhead_share_no_heartbeats_median']:.1%}"
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
