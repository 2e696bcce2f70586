"""What the kill matrices share: which task each stage pauses in, a launcher that pauses it,
and what a killed run may leave behind (processes, MLflow runs, the champion, its history)."""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.tracking import MlflowClient

MODEL = "telco-churn"

#: Stage -> (module, task attribute, pause before or after the task's own work). `register`
#: pauses after, so the killed run leaves a registered version behind; `log` too (a model).
STAGES = {
    "load": ("tasks.gate.admit", "load_snapshot", "before"),
    "validate": ("tasks.gate.suite", "validate_snapshot", "before"),
    "train": ("tasks.training.train", "train_challenger", "before"),
    "log": ("tasks.tracking.models", "log_challenger", "after"),
    "register": ("tasks.registry.versions", "register_challenger", "after"),
    # Whichever the decision calls: promote (a win) or mark not promoted (kept).
    "promote": (
        "tasks.registry.promote:tasks.registry.versions",
        "promote_challenger:mark_not_promoted",
        "before",
    ),
}

#: `python -c LAUNCHER MODULES ATTRIBUTES WHEN MARKER MAIN [ARGS...]`: wraps one task's function
#: (it writes MARKER, then sleeps), then runs module MAIN as `python -m MAIN ARGS` would.
LAUNCHER = """
import importlib, os, runpy, sys, time
modules, attributes, when, marker, main = sys.argv[1:6]
def pausing(real):
    def paused(*args, **kwargs):
        out = real(*args, **kwargs) if when == "after" else None
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(300)
        return out if when == "after" else real(*args, **kwargs)
    return paused
for module, attribute in zip(modules.split(":"), attributes.split(":")):
    task = getattr(importlib.import_module(module), attribute)
    task.fn = pausing(task.fn)
sys.argv = [main, *sys.argv[6:]]
runpy.run_module(main, run_name="__main__")
"""


def launcher_args(stage: str, marker: Path, main: str, *args: str) -> list[str]:
    module, attribute, when = STAGES[stage]
    return ["-c", LAUNCHER, module, attribute, when, str(marker), main, *args]


def mlflow_client(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion(home: Path) -> str | None:
    return mlflow_client(home).get_registered_model(MODEL).aliases.get("champion")


def history(home: Path) -> dict[str, str]:
    tags = mlflow_client(home).get_registered_model(MODEL).tags
    return {k: v for k, v in tags.items() if k.startswith("history.")}


def versions(home: Path) -> set[str]:
    return {v.version for v in mlflow_client(home).search_model_versions(f"name='{MODEL}'")}


def processes_of(home: Path) -> list[str]:
    """Live processes (not zombies) whose environment names this state directory."""
    needle = f"CHURN_RETRAIN_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def no_process_left(home: Path, *, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while (left := processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left behind after {within:g} s: {left}"
