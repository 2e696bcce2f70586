"""How a CLI process ends when it is told to (SIGTERM, Ctrl-C) or was killed before.

A signal unwinds the flow at once (the MLflow run is marked KILLED on the way), but Prefect
then joins the task runner's worker threads, and training runs in one: unwinding would wait for
the training to end. So the moment a SIGTERM or SIGINT arrives, whoever handles it (ours, or
the SIGTERM bridge Prefect installs while a flow runs), a watcher thread learns of it through
`signal.set_wakeup_fd` and starts a grace timer. After `TERM_GRACE_SECONDS` the timer marks this
process's unfinished flow runs Crashed, stops its Prefect server and exits with 128 + signal.

A CLI's flow runs carry an owner tag; a CLI that was SIGKILLed, or whose Prefect server failed
under it, cannot mark its runs, so the next CLI on this host and Prefect database marks those of
a gone owner Crashed.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from tasks.runtime.owner import Owner

if TYPE_CHECKING:
    from tasks.runtime.prefect_server import PrefectServer

#: Seconds a signal leaves the flow to unwind before the process marks its runs and exits.
TERM_GRACE_SECONDS = 10.0
#: Seconds the last bookkeeping (marking this process's flow runs Crashed) may take.
_MARK_SECONDS = 5.0
#: Prefix of the flow-run tag naming the CLI process that ran it.
OWNER_TAG_PREFIX = "churn-retrain-cli:"
_STOPPING = (signal.SIGTERM, signal.SIGINT)


def crash_flow_runs(is_ours: Callable[[Owner], bool], why: Callable[[Owner], str]) -> list[str]:
    """Mark Crashed the Running (or Pending) flow runs whose owner tag `is_ours`.

    Said on stderr; never raises: bookkeeping must not turn a command into a crash.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

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
                if owner is None or not is_ours(owner):
                    continue
                client.set_flow_run_state(run.id, Crashed(message=why(owner)), force=True)
                crashed.append(str(run.id))
                print(
                    f"churn-retrain: flow run {run.name} ({run.id}) was left "
                    f"{run.state_name}: {why(owner)}; marked it Crashed",
                    file=sys.stderr,
                )
    except Exception as exc:
        print(f"churn-retrain: could not check for crashed flow runs: {exc}", file=sys.stderr)
    return crashed


def crash_orphans() -> list[str]:
    """The flow runs a killed CLI left behind: owner on this host and gone."""
    return crash_flow_runs(
        Owner.is_gone, lambda owner: f"its CLI process ({owner.describe()}) was killed"
    )


class Shutdown:
    """Bounds how long a signalled CLI process lives; see the module docstring."""

    def __init__(self, server: PrefectServer) -> None:
        self._server = server
        self._signals: list[int] = []
        self._reader, self._writer = socket.socketpair()
        self._previous_fd = -1
        self._previous_handler: object = None

    @property
    def signalled(self) -> int | None:
        return self._signals[0] if self._signals else None

    def __enter__(self) -> Shutdown:
        self._writer.setblocking(False)
        # Our handler outside flows; during a flow Prefect's bridge replaces it (and restores it).
        self._previous_handler = signal.signal(signal.SIGTERM, self._raise)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="churn-retrain-shutdown", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGTERM, self._previous_handler)  # type: ignore[arg-type]
        self._writer.close()  # ends the watcher

    def _raise(self, signum: int, frame: object) -> None:
        """SIGTERM outside a flow ends the command like Ctrl-C does: `finally` blocks run."""
        raise SystemExit(128 + signum)

    def _watch(self) -> None:
        """Runs in its own thread: the C-level signal handler writes each signal's number."""
        while data := self._reader.recv(64):
            stopping = [n for n in data if n in _STOPPING]
            if stopping and not self._signals:
                self._signals.append(stopping[0])
                timer = threading.Timer(TERM_GRACE_SECONDS, self._exit_now)
                timer.daemon = True
                timer.start()
        self._reader.close()

    def _exit_now(self) -> None:
        signum = self._signals[0]
        print(
            f"churn-retrain: still busy {TERM_GRACE_SECONDS:g} s after "
            f"{signal.Signals(signum).name}; exiting",
            file=sys.stderr,
            flush=True,
        )
        marking = threading.Thread(target=self._mark_own_runs, daemon=True)
        marking.start()
        marking.join(_MARK_SECONDS)
        self._server.stop()
        sys.stdout.flush()
        os._exit(128 + signum)

    def _mark_own_runs(self) -> None:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        me, name = Owner.current(), signal.Signals(self._signals[0]).name
        # Prefect's settings are per thread (a context variable): name this process's server.
        with temporary_settings(updates={PREFECT_API_URL: self._server.api_url}):
            crash_flow_runs(lambda owner: owner == me, lambda _: f"its CLI process got {name}")
