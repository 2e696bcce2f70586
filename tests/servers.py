"""Real servers for integration tests: started on free loopback ports, killed by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    args: list[str], *, env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_http(url: str, *, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `url` answers 200, or fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL: a Prefect worker ignores SIGTERM for 18 s+."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=10)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus any Prefect/MLflow/project settings of the developer's shell."""
    prefixes = ("PREFECT_", "MLFLOW_", "CHURN_RETRAIN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GX_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 300,
    python_flags: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`churn-retrain ARGS` in a fresh process, as a user runs it; output captured, no raise."""
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "cli.main", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def flow_run_logs(flow_run_id: object) -> list[str]:
    """The flow run's log lines as the Prefect UI shows them, oldest first (queued ones sent)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    from tasks.logs import flush_api_logs

    flush_api_logs()
    with get_client(sync_client=True) as client:
        records = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            sort=LogSort.TIMESTAMP_ASC,
        )
    return [record.message for record in records]


T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], *, seconds: float) -> T:
    """Poll `probe` every 0.5 s until it returns something; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.5)
    return found
