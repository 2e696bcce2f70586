"""A Prefect server for one CLI process, booted before the flow's modules are imported.

Prefect starts the same server by itself when no API is configured (`SubprocessASGIServer`), but
only when the first flow is called: after the process has imported Prefect, MLflow, pandas, GX
and PyCaret, and after importing the server's own modules into the client process as well
(~3.5 s of CPU). Started first, its boot overlaps those imports (benchmarks/bench_retrain.py
measures the cold run). This module imports nothing from Prefect.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: uvicorn's exit status when its port was taken between our probe and its bind.
_PORT_TAKEN = 3


class ServerStartFailed(RuntimeError):
    """The temporary Prefect server did not answer in time or exited."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prefect_site_packages() -> str:
    spec = importlib.util.find_spec("prefect")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise ServerStartFailed("prefect is not installed")
    return str(Path(spec.origin).parent.parent)


class TemporaryServer:
    """`start()` boots the server, `wait()` blocks until it answers, `stop()` ends it. The
    caller points Prefect at `api_url`. The database is Prefect's usual one in `PREFECT_HOME`."""

    def __init__(self, *, timeout: float = 90.0) -> None:
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> str:
        """Spawn the server; returns its API URL."""
        self.port = _free_port()
        home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "temporary-server.log"
        env = {
            **os.environ,
            # As Prefect's own temporary server: no UI, ephemeral services only.
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--app-dir",
                    _prefect_site_packages(),
                    "--factory",
                    "prefect.server.api.server:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "error",
                    "--lifespan",
                    "on",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        print(f"Starting temporary Prefect server on {self.api_url}", file=sys.stderr)
        return self.api_url

    def wait(self) -> None:
        """Block until the server's health check answers; restart once if the port was taken."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process is None:
                raise ServerStartFailed("the temporary Prefect server was not started")
            code = self.process.poll()
            if code == _PORT_TAKEN:
                self.start()
                continue
            if code is not None:
                raise ServerStartFailed(
                    f"the temporary Prefect server exited with status {code}; see {self.log}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise ServerStartFailed(
            f"the temporary Prefect server did not answer within {self.timeout:g} s "
            f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); see {self.log}"
        )

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
