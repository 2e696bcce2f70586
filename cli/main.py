"""`churn-retrain`: run the monthly retrain (and friends) from a shell.

The command line is generated from the flows' parameter models (cli/options.py); each
command's handler is in cli/commands.py. This module is the entry point: it parses, prepares
the environment before Prefect is imported, starts a Prefect server when none is configured
(tasks/runtime/prefect_server.py), runs the command and turns its outcome into the exit status.

Exit status: the `EXIT_*` statuses of tasks/errors.py (docs/data-sources.md#exit-statuses
lists them); 0 the command completed (promoted or kept), 1 a crash (see the traceback).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import TYPE_CHECKING, Any

from cli.options import parse
from tasks.errors import (
    EXIT_CRASH,
    EXIT_USAGE,
    ChurnRetrainError,
    UsageError,
    orchestrator_failure,
    state_failure,
)
from tasks.runtime.shutdown import Shutdown

if TYPE_CHECKING:
    from tasks.runtime.prefect_server import PrefectServer
    from tasks.settings import Settings


#: Commands that run a flow or use the Prefect API (each calls `ready` before it does).
_FLOW_COMMANDS = frozenset(
    {"run", "backfill", "replay", "score", "rollback", "prune", "simulate", "validate", "source"}
)
#: Commands that train, so GX and PyCaret are worth importing ahead of time.
_TRAINING_COMMANDS = frozenset({"run", "backfill", "replay", "simulate"})
#: Commands that run the data gate without training: GX only (validate never imports PyCaret).
_GATE_COMMANDS = frozenset({"validate"})
#: Prefect's setting for local result storage, then its older name.
_RESULT_STORAGE_VARIABLES = ("PREFECT_RESULTS_LOCAL_STORAGE_PATH", "PREFECT_LOCAL_STORAGE_PATH")


def _prepare_environment(settings: Settings, command: str) -> None:
    """Keep Prefect's local state under the project's home unless the user chose otherwise.

    Runs before Prefect is imported: Prefect reads its settings once, at import.
    """
    if command == "replay":
        # A replay never talks to the real Prefect server (its events would trigger the real
        # scoring): its own temporary server, with its own database.
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ["PREFECT_HOME"] = str(settings.home / "replays" / "prefect")
        (settings.home / "replays" / "prefect").mkdir(parents=True, exist_ok=True)
    if command == "simulate":
        # The month table is the output; the flows' own logs still reach the Prefect API.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    if not os.environ.get("PREFECT_HOME"):
        # Persisted results (a paused run's, a failed state's) go to $PREFECT_HOME/storage,
        # i.e. ~/.prefect/storage against a server: keep them under the home as well.
        if not any(os.environ.get(name) for name in _RESULT_STORAGE_VARIABLES):
            os.environ[_RESULT_STORAGE_VARIABLES[0]] = str(settings.prefect_home / "storage")
        if not os.environ.get("PREFECT_API_URL"):
            settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect makes the leaf
            os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    # No usage statistics: GX and the Prefect server would otherwise try to send some.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _warm_imports(command: str) -> None:
    """Import GX, and PyCaret for a training command (~6 s), while the Prefect server boots in
    its own process; the flow would import them only after the server answers.

    In the main thread, not a helper thread: two threads importing numpy/MLflow at once
    deadlock on partially initialised modules or race on `os.environ` (numpy sets and deletes
    OPENBLAS_MAIN_FREE while Prefect copies the environment). The server process still overlaps.
    """
    import great_expectations  # noqa: F401

    if command in _GATE_COMMANDS:
        return
    from tasks.training.model import keep_pycaret_quiet

    keep_pycaret_quiet()
    import pycaret.classification  # noqa: F401


def start_prefect_server(command: str) -> PrefectServer | None:
    """With no Prefect API configured (environment, profile, or a test harness), start a server
    for this process now, so it boots while the command imports its flow; else None."""
    if command not in _FLOW_COMMANDS:
        return None
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return None
    from tasks.runtime.prefect_server import PrefectServer

    server = PrefectServer()
    server.start()
    if command in _TRAINING_COMMANDS | _GATE_COMMANDS:
        _warm_imports(command)
    return server


def _refuse_approval_nobody_can_give(command: object) -> None:
    """A run that waits for a person needs a Prefect server that person can reach: this
    process's own temporary one dies with it and has no UI."""
    policy = getattr(command, "approval", None)
    if policy is None or not policy.required:
        return
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise UsageError(
            "--approval.required waits for a person in the Prefect UI: point PREFECT_API_URL "
            "at a Prefect server they can reach (`make prefect-server`) and run again"
        )


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


def _owned() -> AbstractContextManager[object]:
    """This process's flow runs carry its owner tag, on its own server or a configured one:
    when it dies without marking them (SIGKILL, or their server failed under them), the next
    CLI on this host marks them Crashed (`crash_orphans`)."""
    from prefect import tags

    from tasks.runtime.owner import Owner
    from tasks.runtime.shutdown import OWNER_TAG_PREFIX

    return tags(OWNER_TAG_PREFIX + Owner.current().text())


def _ready(server: PrefectServer | None) -> Callable[[], None]:
    """What a handler calls before its flow: wait for our server, then clean up after the dead."""
    from tasks.runtime.shutdown import crash_orphans

    def ready() -> None:
        if server is not None:
            server.wait()
        crash_orphans()

    return ready


def _stop_prefect_server(server: PrefectServer | None) -> None:
    """Send Prefect's queued log lines, then end the server (they would fail after). Events
    still queued are the temporary server's only, which dies here: nobody could read them."""
    if server is None:
        return
    try:
        from tasks.logs import flush_api_logs

        flush_api_logs()
    except Exception as exc:  # a lost log line must not turn a finished run into a crash
        print(f"churn-retrain: could not flush Prefect logs: {exc}", file=sys.stderr)
    server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's entry point; `argv` None: this process's own arguments (the
    console script, `python -m cli.main`), and the process ends when this returns."""
    code = _main(argv)
    if argv is None:
        # The interpreter's last garbage collection walks every object the stack imported
        # (~1.5 s for PyCaret, GX, MLflow and Prefect) only to free memory the exit frees
        # anyway. `gc.freeze` (public) puts them out of its reach; atexit handlers, Prefect's
        # and MLflow's included, still run. Not for a caller that goes on (tests pass argv).
        gc.freeze()
    return code


def _main(argv: Sequence[str] | None) -> int:
    from cli import commands
    from tasks.settings import Settings

    try:
        name, command = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"churn-retrain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _prepare_environment(Settings(), name)
    except OSError as exc:  # a read-only or full state directory, before anything started
        if (named := state_failure(exc, Settings().home)) is None:
            raise
        print(f"churn-retrain: {type(named).__name__}: {named}", file=sys.stderr)
        return named.exit_code
    handlers: dict[str, Callable[[Any, Callable[[], None]], int]] = {
        "run": commands.run,
        "backfill": commands.backfill,
        "replay": commands.replay,
        "score": commands.score,
        "status": commands.status,
        "rollback": commands.rollback,
        "prune": commands.prune,
        "simulate": commands.simulate,
        "generate": commands.generate,
        "validate": commands.validate,
        "automation": commands.automation,
        "source": commands.source,
    }
    server, shutdown = None, None
    with ExitStack() as stack:
        try:
            _refuse_approval_nobody_can_give(command)
            server = start_prefect_server(name)
            # Signals only reach the main thread (tests call `main` from others).
            if server is not None and threading.current_thread() is threading.main_thread():
                shutdown = stack.enter_context(Shutdown(server))
            stack.enter_context(_using(server))
            stack.enter_context(_owned())
            return handlers[name](command, _ready(server))
        except ChurnRetrainError as exc:
            print(f"churn-retrain: {type(exc).__name__}: {exc}", file=sys.stderr)
            return exc.exit_code
        except Exception as exc:
            # A full or read-only disk; a Prefect server that failed under the run.
            failure = state_failure(exc, Settings().home) or orchestrator_failure(exc)
            if failure is not None:
                print(f"churn-retrain: {type(failure).__name__}: {failure}", file=sys.stderr)
                return failure.exit_code
            traceback.print_exc()
            print("churn-retrain: the run crashed (see the traceback above)", file=sys.stderr)
            return EXIT_CRASH
        finally:
            _stop_prefect_server(server)
            if shutdown is not None and (signum := shutdown.signalled) is not None:
                # The flow has marked its runs; a task still busy in a worker thread (training)
                # would keep the interpreter alive until it ends: exit now.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
