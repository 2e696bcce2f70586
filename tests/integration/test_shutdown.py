"""A signalled CLI process ends within its grace even when a thread it must join never returns.

In a fresh interpreter: `Shutdown` wraps a main thread that joins a worker thread sleeping for
minutes (what Prefect does with a thread pool's task at the end of a flow), under a SIGTERM
handler that is not ours (as Prefect's bridge replaces ours while a flow runs). The process must
still exit with 128 + signal soon after the grace, say why, and stop its server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

_SCRIPT = """
import signal, threading
import tasks.runtime.shutdown as shutdown

shutdown.TERM_GRACE_SECONDS = 1.0
shutdown._MARK_SECONDS = 1.0

class Server:
    api_url = "http://127.0.0.1:9/api"  # nothing listens: marking runs fails, bounded
    def stop(self):
        print("server stopped", flush=True)

def not_ours(signum, frame):
    raise KeyboardInterrupt  # unwinds the main thread, which then waits on the join

with shutdown.Shutdown(Server()):
    signal.signal(signal.SIGTERM, not_ours)
    never = threading.Event()
    try:
        print("ready", flush=True)
        never.wait(300)
    except KeyboardInterrupt:
        never.wait(300)  # as Prefect joins its task runner's busy threads
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_process_within_its_grace(sig: signal.Signals, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child inherits an ignored SIGINT (pytest-xdist's workers ignore it), and Python
        # then never raises KeyboardInterrupt nor notes the signal: as Unix intends for a
        # background job. A terminal's Ctrl-C reaches a foreground process with the default.
        preexec_fn=_default_sigint,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
        lived = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + sig, err[-2000:]
    assert f"still busy 1 s after {sig.name}; exiting" in err
    assert "server stopped" in out
    assert lived < 30, f"{lived:.1f} s"
