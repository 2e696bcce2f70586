"""What a run's log shows: an expected failure as its message, a bug with its traceback.

Prefect logs every exception that ends a task or a flow with its traceback (the task engine's
"Task run failed with exception", the flow engine's "Encountered exception during execution").
For this project's named failures (`ChurnRetrainError`: a rejected snapshot, an unreachable
tracking server, a refused rollback), for a full, read-only or corrupt local store, and for a
server that went away (refused, timed out, 5xx to every retry), the traceback says nothing a
person can act on and buries the message, in the terminal and in the Prefect UI alike. A
logging filter on Prefect's run loggers drops the traceback of those records only; anything
else keeps its own.
"""

from __future__ import annotations

import logging

from tasks.errors import ChurnRetrainError, storage_problem, unreachable_reason

#: The loggers of Prefect's task and flow run engines (public names, `prefect.logging`).
RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class _ExpectedFailures(logging.Filter):
    """Keeps every record; removes the traceback when it is one of our named failures."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ChurnRetrainError) or (
            exc is not None and (storage_problem(exc) or unreachable_reason(exc))
        ):
            record.exc_info = None
            record.exc_text = None
        return True


def keep_expected_failures_short() -> None:
    """Install the filter on the run loggers (idempotent; call before a flow runs)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ExpectedFailures) for f in logger.filters):
            logger.addFilter(_ExpectedFailures())


def flush_api_logs() -> None:
    """Send the log lines Prefect has queued for its API now, and wait for them (at most 5 s):
    logging's own `Handler.flush`, which Prefect's API handler implements."""
    from prefect.logging.handlers import APILogHandler

    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    for handler in {h for logger in loggers for h in logger.handlers}:
        if isinstance(handler, APILogHandler):
            handler.flush()
