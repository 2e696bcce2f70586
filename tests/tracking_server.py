"""A real `mlflow server --app-name basic-auth` on a loopback port, standing in for DagsHub.

Started as its own process group (so the uvicorn worker goes with it), killed by that id. The
backend store, artifacts and user database live under one directory, so a restart on the same
port finds everything again, as after a real outage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"  # the auth app wants 12 characters or more


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TrackingServer:
    """One MLflow tracking server with basic auth; `url` is what a client sets as tracking URI.

    `prefix` serves the API under a path, as DagsHub does (`/OWNER/REPO.mlflow`).
    `default_permission` is what every user may do with what others created (READ: only the
    creator may change a model; EDIT: all users are collaborators, as on a shared DagsHub repo).
    """

    def __init__(
        self,
        root: Path,
        *,
        prefix: str = "",
        port: int | None = None,
        default_permission: str = "READ",
    ) -> None:
        self.root = root
        self.default_permission = default_permission
        self.prefix = prefix.rstrip("/")
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []  # seconds each start took until healthy

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + self.prefix

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def start(self, timeout: float = 90.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            f"default_permission = {self.default_permission}\n"
            f"database_uri = sqlite:///{self.root / 'basic_auth.db'}\n"
            f"admin_username = {ADMIN_USER}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Checking a password (PBKDF2) costs ~0.5 s per request on this loaded 2-core
            # machine; a run makes ~60 requests. Wrong passwords are never cached.
            "auth_cache_ttl_seconds = 300\n"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only-secret-key",
            # Two processes and ~0.5 GB instead of 15 and 2-3 GB (STACK-NOTES).
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        command = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--workers",
            "1",
        ]
        if self.prefix:
            command += ["--static-prefix", self.prefix]
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited early:\n{self._log_tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self.starts.append(round(time.perf_counter() - started, 2))
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.kill()
        raise RuntimeError(f"mlflow server not healthy within {timeout:.0f} s:\n{self._log_tail()}")

    def kill(self) -> None:
        """SIGKILL the server's process group: a crash, not a shutdown."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    # --- the admin's view, for setting users up and for assertions ----------------------------

    def api(self, method: str, endpoint: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/api/2.0/mlflow/{endpoint}",
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            timeout=30,
            **kwargs,
        )

    def create_user(self, username: str, password: str) -> None:
        response = self.api(
            "POST", "users/create", json={"username": username, "password": password}
        )
        response.raise_for_status()

    def champion(self, model: str, alias: str = "champion") -> str | None:
        """The version an alias points at, read through the server's REST API."""
        response = self.api(
            "GET", "registered-models/alias", params={"name": model, "alias": alias}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return str(response.json()["model_version"]["version"])

    def versions(self, model: str) -> list[dict[str, Any]]:
        response = self.api(
            "GET", "model-versions/search", params={"filter": f"name='{model}'", "max_results": 100}
        )
        response.raise_for_status()
        return list(response.json().get("model_versions", []))

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.api("GET", "runs/get", params={"run_id": run_id})
        response.raise_for_status()
        return dict(response.json()["run"])
