"""`churn-retrain`: run the monthly retrain (and friends) from a shell.

The command line is generated from the flows' parameter models (flows/options.py); each
command's handler is in flows/commands.py. This module is the entry point: it parses, prepares
the environment before Prefect is imported, starts a Prefect server when none is configured
(flows/prefect_server.py), runs the command and turns its outcome into the exit status.

Exit status (tasks/errors.py): 0 the command completed (promoted or kept); 2 bad command line
(or a refused rollback: nothing to roll back to, unknown version); 3 the snapshot was rejected
(nothing trained, champion untouched; also a 4xx answer from a snapshot URL); 4 training
failed; 5 tracking server unreachable; 6 the snapshot's URL gave no usable answer (5xx, or not
within CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS) after the retries; 1 anything else (a crash: see
the traceback).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import FrameType
from typing import TYPE_CHECKING, Any

from flows.options import parse
from tasks.errors import EXIT_CRASH, EXIT_USAGE, ChurnRetrainError, UsageError

if TYPE_CHECKING:
    from flows.prefect_server import PrefectServer
    from tasks.settings import Settings


#: Commands that run a flow (each calls `ready` before it does).
_FLOW_COMMANDS = frozenset({"run", "score", "rollback", "simulate", "validate"})
#: Commands that train, so GX and PyCaret are worth importing ahead of time.
_TRAINING_COMMANDS = frozenset({"run", "simulate"})


def _prepare_environment(settings: Settings, command: str) -> None:
    """Keep Prefect's local state under the project's home unless the user chose otherwise.

    Runs before Prefect is imported: Prefect reads its settings once, at import.
    """
    if command == "simulate":
        # The month table is the output; the flows' own logs still reach the Prefect API.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the leaf
        os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    # No usage statistics: GX and the Prefect server would otherwise try to send some.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _warm_imports() -> None:
    """Import GX and PyCaret (~6 s) while the Prefect server boots in its own process.

    In the main thread, not a helper thread: two threads importing numpy/MLflow at once
    deadlock on partially initialised modules or race on `os.environ` (numpy sets and deletes
    OPENBLAS_MAIN_FREE while Prefect copies the environment). The server process still overlaps.
    """
    from tasks.training.model import keep_pycaret_quiet

    keep_pycaret_quiet()
    import great_expectations  # noqa: F401
    import pycaret.classification  # noqa: F401


def start_prefect_server(command: str) -> PrefectServer | None:
    """With no Prefect API configured (environment, profile, or a test harness), start a server
    for this process now, so it boots while the command imports its flow; else None."""
    if command not in _FLOW_COMMANDS:
        return None
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return None
    from flows.prefect_server import PrefectServer

    server = PrefectServer()
    server.start()
    if command in _TRAINING_COMMANDS:
        _warm_imports()
    return server


def _using(server: PrefectServer | None) -> AbstractContextManager[object]:
    """Prefect settings while the command runs, through Prefect's public settings API: the API
    URL of this process's server, if any, and no flow-run heartbeats (they let a long-lived
    server spot crashed runs; this one dies with the process, and stopping the heartbeat thread
    costs each flow up to 1 s). Prefect is imported by then, so environment variables set now
    would not be read: `temporary_settings` is how a running process changes them."""
    if server is None:
        return nullcontext()
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    return temporary_settings(
        updates={PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    )


#: Prefix of the flow-run tag naming the CLI process that ran it on its own server.
OWNER_TAG_PREFIX = "churn-retrain-cli:"


def _owned(server: PrefectServer | None) -> AbstractContextManager[object]:
    """Flow runs on this process's own server carry its owner tag (see `_crash_orphans`)."""
    if server is None:
        return nullcontext()
    from prefect import tags

    from tasks.tracking.owner import Owner

    return tags(OWNER_TAG_PREFIX + Owner.current().text())


def _ready(server: PrefectServer | None) -> Callable[[], None]:
    """What a handler calls before its flow: wait for our server, then clean up after the dead."""
    if server is None:
        return lambda: None

    def ready() -> None:
        server.wait()
        _crash_orphans()

    return ready


def _crash_orphans() -> list[str]:
    """Mark Crashed the flow runs a killed CLI left Running (or Pending) in this PREFECT_HOME.

    The CLI's server dies with it, so a SIGKILLed run cannot be marked Crashed by anyone then:
    the next CLI on the same database does it, for runs whose owner tag names a process that is
    gone (tasks/tracking/owner.py: same host, pid dead or reused). Runs of a live CLI, of
    another host, or without the tag are left alone. Said on stderr; never fails the command.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    from tasks.tracking.owner import Owner

    crashed = []
    try:
        with get_client(sync_client=True) as client:
            states = [StateType.RUNNING, StateType.PENDING]
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))
                )
            )
            for run in runs:
                tagged = [t for t in run.tags if t.startswith(OWNER_TAG_PREFIX)]
                owner = Owner.parse(tagged[0][len(OWNER_TAG_PREFIX) :]) if tagged else None
                if owner is None or not owner.is_gone():
                    continue
                why = f"its CLI process ({owner.describe()}) was killed"
                client.set_flow_run_state(run.id, Crashed(message=why), force=True)
                crashed.append(str(run.id))
                print(
                    f"churn-retrain: flow run {run.name} ({run.id}) was left "
                    f"{run.state_name}: {why}; marked it Crashed",
                    file=sys.stderr,
                )
    except Exception as exc:  # bookkeeping of an old run must not stop this one
        print(f"churn-retrain: could not check for crashed flow runs: {exc}", file=sys.stderr)
    return crashed


def _stop_prefect_server(server: PrefectServer | None) -> None:
    """Send Prefect's queued logs and events, then end the server (they would fail after)."""
    if server is None:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception as exc:  # a lost log line must not turn a finished run into a crash
        print(f"churn-retrain: could not flush Prefect logs: {exc}", file=sys.stderr)
    server.stop()


#: Set when SIGTERM arrived: the process then exits without waiting for worker threads.
_TERMINATED: list[int] = []


#: Seconds SIGTERM leaves the flow to unwind before the process stops its server and exits.
TERM_GRACE_SECONDS = 10.0
#: The server this process started, for that last stop.
_SERVERS: list[PrefectServer] = []


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the command like Ctrl-C does: `finally` blocks run, the server stops.

    The flow unwinds at once (the MLflow run is marked KILLED on the way), but Prefect then
    waits for tasks still running in worker threads (training): after `TERM_GRACE_SECONDS`
    a timer stops the server and exits; the next CLI marks that flow run Crashed.
    """
    if not _TERMINATED:
        _TERMINATED.append(signum)
        timer = threading.Timer(TERM_GRACE_SECONDS, _exit_now, args=(signum,))
        timer.daemon = True
        timer.start()
    raise SystemExit(128 + signum)


def _exit_now(signum: int) -> None:
    print(
        f"churn-retrain: still busy {TERM_GRACE_SECONDS:g} s after the signal; exiting",
        file=sys.stderr,
        flush=True,
    )
    for server in _SERVERS:
        server.stop()
    sys.stdout.flush()
    os._exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    from flows import commands
    from tasks.settings import Settings

    try:
        name, command = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"churn-retrain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _prepare_environment(Settings(), name)
    handlers: dict[str, Callable[[Any, Callable[[], None]], int]] = {
        "run": commands.run,
        "score": commands.score,
        "status": commands.status,
        "rollback": commands.rollback,
        "simulate": commands.simulate,
        "generate": commands.generate,
        "validate": commands.validate,
        "automation": commands.automation,
    }
    server = None
    previous = signal.getsignal(signal.SIGTERM)
    try:
        server = start_prefect_server(name)
        if server is not None and threading.current_thread() is threading.main_thread():
            _SERVERS.append(server)
            signal.signal(signal.SIGTERM, _terminated)
        with _using(server), _owned(server):
            return handlers[name](command, _ready(server))
    except ChurnRetrainError as exc:
        print(f"churn-retrain: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        print("churn-retrain: the run crashed (see the traceback above)", file=sys.stderr)
        return EXIT_CRASH
    finally:
        _stop_prefect_server(server)
        if server is not None and threading.current_thread() is threading.main_thread():
            _SERVERS.clear()
            signal.signal(signal.SIGTERM, previous)
            if _TERMINATED:
                # The flow has marked its runs; a task still busy in a worker thread (training)
                # would keep the interpreter alive until it ends: exit now.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(128 + _TERMINATED[0])


if __name__ == "__main__":
    sys.exit(main())
