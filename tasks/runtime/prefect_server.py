"""A Prefect server for one CLI process: the public `prefect server start`, dying with us.

With no Prefect API configured, Prefect would start its own temporary server when the first flow
is called: after this process has imported Prefect, MLflow, pandas, GX and PyCaret. Started
first, the server boots while those imports run (benchmarks/bench_retrain.py measures the cold
run). It is the documented command, `prefect server start --host 127.0.0.1 --port P --no-ui
--no-scheduler --no-late-runs --analytics-off`: one process, SQLite under `PREFECT_HOME`, the
event and task-run services that record the run, no scheduler (nothing is deployed on it).

The client is pointed at it by the caller with Prefect's public settings API
(`prefect.settings.temporary_settings` with `PREFECT_API_URL`, see cli/main.py). It dies with
this process: `stop()` on the way out, and on Linux the kernel sends it SIGTERM if the CLI dies
without a chance to (SIGKILL, a crash): `prctl(PR_SET_PDEATHSIG)`. It runs in its own session,
so Ctrl-C in the terminal reaches the CLI only, which then stops it. This module imports
nothing from Prefect.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.errors import PrefectServerFailed

if TYPE_CHECKING:
    from filelock import BaseFileLock

#: Seconds to wait for `/api/health`: it is 4-11 s, and was over 20 s on a busy 2-core machine.
STARTUP_TIMEOUT_SECONDS = 90.0
#: Start attempts when the free port we picked was taken before the server bound it.
_PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with(parent: int) -> Callable[[], None] | None:
    """`preexec_fn` for the server on Linux: SIGTERM when `parent` dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: go now
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _lock_until(path: Path, deadline: float) -> BaseFileLock | None:
    """An exclusive lock on `path` (the OS's: it goes with its holder, even by SIGKILL), held
    once it is free, waiting until the monotonic `deadline` at most; None if still taken."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=max(0.0, deadline - time.monotonic()), poll_interval=0.2)
    except Timeout:
        return None
    return lock


class PrefectServer:
    """`start()` spawns the server, `wait()` blocks until it answers, `stop()` ends it.

    The caller points Prefect at `api_url`. The database is Prefect's usual one in
    `PREFECT_HOME`; the server's output goes to `<PREFECT_HOME>/server.log`.
    """

    def __init__(self, *, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")) / "server.log"
        self._log_start = 0
        self._start_lock: BaseFileLock | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def command(self) -> list[str]:
        """The documented command line this server runs."""
        return [
            *(sys.executable, "-m", "prefect", "server", "start"),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--no-ui", "--no-scheduler", "--no-late-runs", "--analytics-off"),
        ]

    def start(self) -> str:
        """Spawn the server on a free loopback port; returns its API URL.

        Only one server of a `PREFECT_HOME` boots at a time: each migrates the SQLite database
        at start, with no lock of its own, and two first runs at once crashed one of them
        (`duplicate column name`). The boot holds the OS lock on `server-start.lock` (filelock) until
        the server answers (the kernel drops it if we die). When another CLI is booting its
        server, this one starts in `wait()`, once the database is ready.
        """
        self.port = _free_port()
        self._start_lock = _lock_until(self.log.parent / "server-start.lock", time.monotonic())
        if self._start_lock is not None:
            self._spawn()
        print(f"Starting a Prefect server for this run on {self.api_url}", file=sys.stderr)
        return self.api_url

    def _spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
        env.pop("PREFECT_API_URL", None)  # it is the API; it must not look for another one
        # Appended, not truncated: two CLIs on one PREFECT_HOME share the file.
        with self.log.open("ab") as log:
            log.write(f"--- server for CLI pid {os.getpid()} on port {self.port}\n".encode())
            self._log_start = log.tell()
            self.process = subprocess.Popen(
                self.command(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Not thread-safe in general; the CLI starts it before any thread exists.
                preexec_fn=_die_with(os.getpid()),
            )

    def wait(self) -> None:
        """Block until `/api/health` answers; start again if our port was taken meanwhile."""
        deadline = time.monotonic() + self.timeout
        try:
            if self.process is None and self._start_lock is None:
                self._start_lock = _lock_until(self.log.parent / "server-start.lock", deadline)
                if self._start_lock is None:
                    raise PrefectServerFailed(
                        f"another Prefect server of {self.log.parent} kept booting for "
                        f"{self.timeout:g} s; see {self.log}"
                    )
                self._spawn()
            self._wait_healthy(deadline)
        finally:
            self._release_start_lock()

    def _wait_healthy(self, deadline: float) -> None:
        attempts = 1
        while time.monotonic() < deadline:
            if self.process is None:
                raise PrefectServerFailed("the Prefect server was not started")
            code = self.process.poll()
            if code is not None:
                if attempts < _PORT_ATTEMPTS and "already in use" in self._log_tail():
                    attempts += 1
                    self.port = _free_port()
                    self._spawn()
                    continue
                raise PrefectServerFailed(
                    f"the Prefect server exited with status {code}; see {self.log}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise PrefectServerFailed(
            f"the Prefect server did not answer within {self.timeout:g} s; see {self.log}"
        )

    def _release_start_lock(self) -> None:
        if self._start_lock is not None:
            self._start_lock.release()
        self._start_lock = None

    def stop(self, *, grace: float = 5.0) -> None:
        """SIGTERM the server's process group, then SIGKILL after `grace` seconds."""
        self._release_start_lock()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()

    def _log_tail(self) -> str:
        try:
            with self.log.open("rb") as log:
                log.seek(self._log_start)
                return log.read().decode(errors="replace")[-2000:]
        except OSError:
            return ""
