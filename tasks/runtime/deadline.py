"""One way to bound a call in time, for every network and database call: a `Deadline`.

A deadline is a point in time (the monotonic clock), not a duration handed from call to call,
so one budget bounds a whole operation: a download's connect, headers and body; a load and its
retries (`Deadline.for_this_task` anchors it at the task's first attempt, which Prefect keeps
across retries). `call` runs a blocking operation in a daemon thread and gives up on it at the
deadline, after asking it to stop (`cancel`: close a socket, cancel a query); a thread that
still blocks is abandoned and cannot hold the process open. Each socket read below is bounded
by its own client's timeout too, so an abandoned thread ends soon after.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")


class DeadlineExceeded(TimeoutError):
    """The deadline passed before the operation finished (callers name what timed out)."""


@dataclass(frozen=True)
class Deadline:
    """`seconds` of budget, ending at `at` on the monotonic clock."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    @classmethod
    def for_this_task(cls, seconds: float) -> Deadline:
        """`seconds` from the first attempt of the running Prefect task (retries share it);
        from now outside a task."""
        from prefect.context import TaskRunContext

        context = TaskRunContext.get()
        started = context.task_run.start_time if context is not None else None
        if started is None:
            return cls.after(seconds)
        spent = max(0.0, time.time() - started.timestamp())
        return cls(seconds, time.monotonic() + seconds - spent)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, cap: float) -> float:
        """A per-step timeout: `cap`, or what is left if less (never 0: a socket needs > 0)."""
        return max(0.001, min(cap, self.remaining()))

    def call(self, operation: Callable[[], _T], *, cancel: Callable[[], Any] | None = None) -> _T:
        """`operation()` in a daemon thread; its result, or its exception re-raised here.

        At the deadline, `cancel()` is called (errors ignored) and `DeadlineExceeded` raised.
        """
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = operation()
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=run, name="churn-retrain-deadline", daemon=True)
        worker.start()
        worker.join(self.remaining())
        if worker.is_alive():
            if cancel is not None:
                with suppress(Exception):
                    cancel()
            raise DeadlineExceeded(f"not finished within {self.seconds:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def get(self, items: queue.Queue[_T]) -> _T:
        """The next item another thread puts in `items`, waited for until the deadline."""
        try:
            return items.get(timeout=self.remaining())
        except queue.Empty:
            raise DeadlineExceeded(f"not finished within {self.seconds:g} s") from None
