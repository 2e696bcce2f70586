"""The docs' walkthroughs, run as written against real servers (issue 16).

The commands are read from the one page (README.md or a docs/*.md page) that holds them between
`<!-- walkthrough:begin NAME -->` and `<!-- walkthrough:end -->`, in order, and run one by one
in a shell that keeps what each `export` set, as the terminals of a person following them would.
Only what must differ is substituted: a free port for the documented default, a local receiver
for the Slack URL, a temporary `CHURN_RETRAIN_HOME` and `HOME`. A command that keeps running (a
server, the worker) is started in the background and waited for; a command whose comment in the
docs says it fails on purpose must exit non-zero. Every wait is bounded; every background
process is stopped.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.alert_receivers import AlertReceiver, receiver
from tests.killing import no_process_left
from tests.servers import clean_env, free_port, start, stop, wait_http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: Where walkthroughs may live: the README and every docs page.
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
#: What bash itself sets: not something an `export` of the walkthrough chose.
_SHELL_VARIABLES = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})
_FLOW_RUN_ID = re.compile(r"UUID: ([0-9a-f-]{36})")


def walkthrough(name: str) -> list[str]:
    """The commands of the docs' walkthrough NAME, in order (comment lines left out); its blocks
    must all be in one page."""
    pattern = re.compile(
        rf"<!-- walkthrough:begin {re.escape(name)} -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->",
        flags=re.S,
    )
    found = {page: pattern.findall(page.read_text()) for page in PAGES}
    holders = [page.relative_to(ROOT) for page, blocks in found.items() if blocks]
    assert len(holders) == 1, f"walkthrough {name!r} should be in exactly one page, not {holders}"
    blocks = [block for page_blocks in found.values() for block in page_blocks]
    lines = [line for block in blocks for line in block.splitlines()]
    commands = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert not [c for c in commands if c.rstrip().endswith("\\")], "one command per line"
    return commands


def substitute(commands: list[str], replacements: dict[str, str]) -> list[str]:
    """Replace each documented value once; a README that no longer says it fails here."""
    text = "\n".join(commands)
    for old, new in replacements.items():
        assert text.count(old) == 1, f"the walkthrough should say {old!r} once"
        text = text.replace(old, new)
    return text.split("\n")


def _code(command: str) -> str:
    return command.split("  #", 1)[0].strip()


class Shell:
    """One person's terminals: the environment the `export` lines build, the commands' logs,
    and the background processes, stopped by `close`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.outputs: list[tuple[str, subprocess.CompletedProcess[str]]] = []
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def run(self, command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
        dump = self.logs / "env.bin"
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", f"set -eo pipefail\n{command}\nenv -0 > '{dump}'"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        print(f"[{time.monotonic() - started:5.1f} s, exit {done.returncode}] {command}")
        self.outputs.append((command, done))
        if done.returncode == 0 and _code(command).startswith("export "):
            pairs = (item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
            self.env = {k: v for k, v in pairs if k not in _SHELL_VARIABLES}
        return done

    def start(self, command: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"background-{len(self.background)}.log"
        process = start(["bash", "-c", command], env=self.env, log=log, cwd=ROOT)
        self.background.append((command, process, log))
        print(f"[background] {command}")
        return process, log

    def close(self) -> None:
        for _, process, _ in reversed(self.background):
            stop(process)


def follow(
    shell: Shell,
    commands: list[str],
    ready: dict[str, Callable[[Shell, subprocess.Popen[bytes], Path], None]],
) -> None:
    """Run the commands in order; those named in `ready` in the background, then wait for
    them with its probe."""
    for command in commands:
        code = _code(command)
        if code in ready:
            process, log = shell.start(command)
            ready[code](shell, process, log)
            continue
        done = shell.run(command, timeout=900)
        shown = f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if "# fails" in command:
            assert done.returncode != 0, shown
        else:
            assert done.returncode == 0, shown


def _get(url: str) -> tuple[int, str]:
    """GET as a browser navigates (the UI answers its pages to `Accept: text/html` only)."""
    request = urllib.request.Request(url, headers={"accept": "text/html,*/*;q=0.8"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, answer.read().decode("utf-8", "replace")


def _workers_of_pool(api_url: str, pool: str) -> list[object]:
    request = urllib.request.Request(
        f"{api_url}/work_pools/{pool}/workers/filter",
        data=b"{}",
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return list(json.loads(answer.read()))
    except OSError:
        return []


def _prefect_server_ready(shell: Shell, process: subprocess.Popen[bytes], log: Path) -> None:
    wait_http(f"{shell.env['PREFECT_API_URL']}/health", timeout=180, process=process, log=log)


def _worker_ready(shell: Shell, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while not _workers_of_pool(shell.env["PREFECT_API_URL"], "churn-retrain"):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no worker after 180 s:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def _mlflow_server_ready(shell: Shell, process: subprocess.Popen[bytes], log: Path) -> None:
    port = shell.env["MLFLOW_SERVER_PORT"]
    wait_http(f"http://127.0.0.1:{port}/health", timeout=180, process=process, log=log)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    """A new user's shell: no Prefect, MLflow or project settings, a throwaway HOME, state in a
    temporary CHURN_RETRAIN_HOME. `uv run` uses the checkout's environment as it is (it would
    otherwise sync the shared `.venv` while other tests use it)."""
    (tmp_path / "home").mkdir()
    (tmp_path / "logs").mkdir()
    env = clean_env(
        HOME=str(tmp_path / "home"),
        CHURN_RETRAIN_HOME=str(tmp_path / "state"),
        UV_FROZEN="1",
        UV_NO_SYNC="1",
        # Workers poll every 10 s by default; this only makes the test quicker.
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    env.pop("PREFECT_LOGGING_LEVEL")  # a person sees Prefect's normal output
    session = Shell(env, tmp_path / "logs")
    with ExitStack() as cleanup:
        cleanup.callback(no_process_left, tmp_path / "state")
        cleanup.callback(session.close)
        yield session


def _wait_for_alerts(alerts: AlertReceiver, link: str, *, seconds: float) -> list[str]:
    """The texts that carry `link`, once both alerts (the run's own, the automation's) came."""
    deadline = time.monotonic() + seconds
    while True:
        texts = [t for t in alerts.texts() if link in t]
        own = [t for t in texts if "Error: " in t]
        automation = [t for t in texts if "entered state Failed" in t]
        if own and automation:
            return texts
        assert time.monotonic() < deadline, f"not both alerts with {link}: {alerts.texts()}"
        time.sleep(0.5)


def test_the_prefect_server_walkthrough_runs_as_written(shell: Shell) -> None:
    port = free_port()
    with receiver() as alerts:
        commands = substitute(
            walkthrough("prefect"),
            {
                "PREFECT_PORT=4200": f"PREFECT_PORT={port}",
                "URL=https://hooks.slack.com/services/...": f"URL={alerts.url}",
            },
        )
        follow(
            shell,
            commands,
            {"make prefect-server": _prefect_server_ready, "make worker": _worker_ready},
        )
        runs = [
            (command, done)
            for command, done in shell.outputs
            if "prefect deployment run retrain/manual" in command
        ]
        assert [done.returncode == 0 for _, done in runs] == [True, False], runs
        (failed_id,) = _FLOW_RUN_ID.findall(runs[1][1].stdout)
        link = f"http://127.0.0.1:{port}/runs/flow-run/{failed_id}"
        texts = _wait_for_alerts(alerts, link, seconds=120)
        assert not [t for t in alerts.texts() if "Flow run: None" in t], alerts.texts()
        assert any("/no/such/" in t and "2026-01" in t for t in texts), texts

    # The link opens the UI, and that UI calls this server's API, not 4200's.
    status, page = _get(link)
    assert status == 200 and "<html" in page.lower()
    status, body = _get(f"http://127.0.0.1:{port}/ui-settings")
    assert status == 200 and json.loads(body)["api_url"] == f"http://127.0.0.1:{port}/api"

    # All state under CHURN_RETRAIN_HOME: the runs' result storage too (Prefect creates it when
    # a run starts), nothing in ~/.prefect/storage.
    home = Path(shell.env["HOME"])
    assert not list(home.glob(".prefect/storage*")), sorted(home.rglob("*"))
    state = Path(shell.env["CHURN_RETRAIN_HOME"])
    assert (state / "prefect" / "storage").is_dir(), sorted(state.rglob("*"))
    assert (state / "prefect" / "prefect.db").is_file() and (state / "mlflow.db").is_file()


def test_the_remote_tracking_walkthrough_runs_as_written(shell: Shell) -> None:
    port = free_port()
    commands = substitute(
        walkthrough("remote-tracking"), {"MLFLOW_SERVER_PORT=5001": f"MLFLOW_SERVER_PORT={port}"}
    )
    follow(shell, commands, {"make mlflow-server": _mlflow_server_ready})
    (_, run), *_ = [(c, d) for c, d in shell.outputs if _code(c).endswith("make run")]
    assert f"on http://127.0.0.1:{port}" in run.stdout, run.stdout
    assert f"http://127.0.0.1:{port}/#/experiments/" in run.stdout, run.stdout
    state = Path(shell.env["CHURN_RETRAIN_HOME"])
    assert (state / "mlflow-server" / "mlflow.db").is_file()
    assert not (state / "mlflow.db").exists()  # tracked on the server, not the local store
