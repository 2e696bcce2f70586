"""Prefect's overhead on the retrain, and what a temporary Prefect server costs a cold process.

    make bench           # or: uv run python benchmarks/bench_overhead.py [--csv PATH] [--runs 5]

1. With a Prefect server already running, the retrain on the Telco CSV runs in turn as the
   Prefect flow, as the flow with flow-run heartbeats off, and as the same flow body with every
   task replaced by its plain function, in one process (so imports, caches and the machine's
   load are shared). The time inside the task functions is measured in every arm, so
   Prefect's overhead = the flow's time outside them minus the direct body's time outside them,
   as a share of the flow's wall time. (Training alone varies ~1 s between runs, which swamps a
   bare flow-vs-direct wall ratio; that ratio is printed too.) Heartbeats are Prefect's default
   (every 180 s); stopping their thread at the end of a flow waits up to 1 s, so a third arm
   runs without them.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
_TRIVIAL = "from prefect import flow\n@flow\ndef noop():\n    return 1\nnoop()\n"


class _Timer:
    """Time spent inside task functions, outermost calls only (a task may call another)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                self.seconds += time.perf_counter() - started
                self.calls += 1

        return timed


class _Direct:
    """A task's plain function; `.submit(...).result()` calls it in place."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> SimpleNamespace:
        value = self.fn(*args, **kwargs)
        return SimpleNamespace(result=lambda: value)


def _reachable_tasks() -> list[tuple[Any, str, Any]]:
    """(module, name, task) for every Prefect task the retrain flow can reach."""
    from prefect import Task

    return [
        (module, attr, value)
        for name, module in list(sys.modules.items())
        if name == "flows.retrain" or name.startswith("tasks.")
        for attr, value in list(vars(module).items())
        if isinstance(value, Task)
    ]


@contextmanager
def _timed_tasks(timer: _Timer, *, as_functions: bool) -> Iterator[None]:
    """Time every task's function while it runs, as a Prefect task or (as_functions) as the
    plain function put in the task's place; everything is restored afterwards."""
    found = _reachable_tasks()
    originals = {id(task): (task, task.fn) for _, _, task in found}
    try:
        for task, fn in originals.values():
            task.fn = timer.wrap(fn)
        if as_functions:
            for module, attr, task in found:
                setattr(module, attr, _Direct(task.fn))
        yield
    finally:
        for module, attr, task in found:
            setattr(module, attr, task)
        for task, fn in originals.values():
            task.fn = fn


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
        # The server's telemetry writes race the flow runs' on SQLite ("database is locked").
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        Path(tmp, "prefect").mkdir()
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )
        from prefect.testing.utilities import prefect_test_harness

        from flows.parameters import RetrainParameters
        from flows.retrain import retrain

        runs = []
        with prefect_test_harness(server_startup_timeout=60):
            api_url = PREFECT_API_URL.value()
            retrain(RetrainParameters(period="2025-11", data=str(args.csv)))  # first: registers
            retrain(RetrainParameters(period="2025-12", data=str(args.csv)))  # warm: a tie
            arms = ("direct", "flow", "flow, no heartbeats")
            for i in range(args.runs):
                # Same work each time: a champion exists, the data are the same, a new period.
                # The order rotates so no arm always runs on a cooler machine.
                run: dict[str, Any] = {}
                for k, arm in enumerate(arms[i % 3 :] + arms[: i % 3]):
                    params = RetrainParameters(period=f"{2026 + k}-{i + 1:02d}", data=str(args.csv))
                    timer = _Timer()
                    started = time.perf_counter()
                    with _timed_tasks(timer, as_functions=arm == "direct"):
                        if arm == "direct":
                            retrain.fn(params)
                        elif arm == "flow":
                            retrain(params)
                        else:
                            no_beats = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
                            with temporary_settings(updates=no_beats):
                                retrain(params)
                    wall = time.perf_counter() - started
                    # Outside the task functions: the flow body's own code, plus Prefect's work.
                    run[arm] = {"wall": wall, "in_tasks": timer.seconds, "tasks": timer.calls}
                runs.append(run)
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
            with_server = [
                _trivial_flow_seconds({**base_env, "PREFECT_API_URL": api_url}) for _ in range(3)
            ]
        without_server = [_trivial_flow_seconds(base_env) for _ in range(3)]

    def _overhead(run: dict[str, Any], arm: str) -> float:
        """Prefect's seconds: time outside task functions, flow minus direct (training's
        run-to-run noise, about 1 s here, stays inside the task functions and cancels)."""
        outside = run[arm]["wall"] - run[arm]["in_tasks"]
        return float(outside - (run["direct"]["wall"] - run["direct"]["in_tasks"]))

    figures = {
        "runs": runs,
        "overhead_seconds_median": round(statistics.median(_overhead(r, "flow") for r in runs), 3),
        "overhead_share_median": round(
            statistics.median(_overhead(r, "flow") / r["flow"]["wall"] for r in runs), 4
        ),
        "overhead_share_no_heartbeats_median": round(
            statistics.median(
                _overhead(r, "flow, no heartbeats") / r["flow, no heartbeats"]["wall"] for r in runs
            ),
            4,
        ),
        "ratio_flow_to_direct_wall_median": round(
            statistics.median(r["flow"]["wall"] / r["direct"]["wall"] for r in runs), 4
        ),
        "trivial_flow_with_server_s": round(statistics.median(with_server), 2),
        "trivial_flow_temporary_server_s": round(statistics.median(without_server), 2),
    }
    figures["temporary_server_cost_s"] = round(
        figures["trivial_flow_temporary_server_s"] - figures["trivial_flow_with_server_s"], 2
    )
    print(f"Prefect overhead on the retrain ({args.csv.name}, server running, {args.runs} runs)")
    print(f"  {'arm':<20}{'wall s':>8}{'in tasks s':>12}{'outside s':>11}{'calls':>7}")
    for i, run in enumerate(runs):
        for arm, m in run.items():
            print(
                f"  {arm:<20}{m['wall']:>8.2f}{m['in_tasks']:>12.2f}"
                f"{m['wall'] - m['in_tasks']:>11.2f}{m['tasks']:>7}"
                + (f"   run {i + 1}" if arm == "direct" else "")
            )
    print(
        f"  median overhead {figures['overhead_seconds_median']:.2f} s, "
        f"{figures['overhead_share_median']:.1%} of the flow's wall time (target <= 5%); "
        f"without flow-run heartbeats (as the CLI's temporary-server runs) "
        f"{figures['overhead_share_no_heartbeats_median']:.1%}"
    )
    print(
        f"  whole-flow ratio, noisier (training varies ~1 s run to run): flow / direct = "
        f"{figures['ratio_flow_to_direct_wall_median']:.3f}"
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
