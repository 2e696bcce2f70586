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
cli._warm_imports()
for thread in threading.enumerate():  # an import thread, if there is one, is waited for
    if thread.name == "warm-imports":
        thread.join(timeout=120)
print(json.dumps(seen))
"""


@pytest.mark.slow  # imports PyCaret in a fresh interpreter (~15 s)
def test_training_imports_are_warmed_in_the_main_thread() -> None:
    # A fresh interpreter: the imports happen there for the first time, where the hook sees them.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    in_main_thread = json.loads(done.stdout.strip().splitlines()[-1])
    assert in_main_thread == {"pycaret.classification": True, "great_expectations": True}
