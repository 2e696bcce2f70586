"""Start-up: the CLI warms its training imports without a second thread (issue 13's race).

About one cold run in 28 died with `KeyError: 'OPENBLAS_MAIN_FREE'` when GX and PyCaret were
imported in a helper thread: numpy sets and deletes that variable while the main thread copied
`os.environ` for Prefect's settings. Importing in the main thread removes the race at its root;
`make bench-cold-starts` runs 100 cold starts to show it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


_PROBE = """
import json, sys, threading
seen = {}
def on_import(event, args):
    if event == "import" and args[0] in ("pycaret.classification", "great_expectations"):
        seen[args[0]] = threading.current_thread() is threading.main_thread()
sys.addaudithook(on_import)
from cli import main as cli
cli._warm_imports(sys.argv[1])
for thread in threading.enumerate():  # an import thread, if there is one, is waited for
    if thread.name == "warm-imports":
        thread.join(timeout=120)
print(json.dumps({**seen, "pycaret_loaded": "pycaret" in sys.modules}))
"""


@pytest.mark.slow  # imports PyCaret in a fresh interpreter (~15 s)
def test_training_imports_are_warmed_in_the_main_thread() -> None:
    # A fresh interpreter: the imports happen there for the first time, where the hook sees them.
    in_main_thread = _warm("run")
    assert in_main_thread == {
        "pycaret.classification": True,
        "great_expectations": True,
        "pycaret_loaded": True,
    }


@pytest.mark.slow  # imports GX in a fresh interpreter
def test_validate_warms_gx_only_never_pycaret() -> None:
    # validate overlaps its GX import with the server's boot; PyCaret stays out of it.
    assert _warm("validate") == {"great_expectations": True, "pycaret_loaded": False}


def _warm(command: str) -> dict[str, bool]:
    """What `_warm_imports(command)` imported in a fresh interpreter, and in which thread."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
