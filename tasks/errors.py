"""Exceptions a run can end with, each with its CLI exit status, and the statuses themselves.

`churn-retrain` exits with `EXIT_OK` when the command completed (a run that kept the champion
included), `EXIT_USAGE` for a command line that does not validate, a refused rollback or no (usable)
data source configured,
`EXIT_REJECTED` when the data gate rejected the snapshot (nothing trained), `EXIT_TRAINING`
when training failed, `EXIT_TRACKING` when the tracking server cannot be used,
`EXIT_SOURCE_UNAVAILABLE` when the snapshot's URL gave no usable answer (5xx, no answer within
the download deadline) after the retries, `EXIT_CHAMPION_BELOW_FLOOR` when the champion scored
below the rule's floor on fresh data and no challenger replaced it (the run is recorded, and
Failed, so a person sees it), `EXIT_CONFLICT` when a move of the champion (promotion, rollback,
prune) was decided against a champion that changed meanwhile and was refused, `EXIT_STATE` when
the state directory or the local store cannot be used (read-only, full, corrupt: nothing was
changed), `EXIT_NO_CHAMPION` when a command needs a champion and the (healthy) registry has none,
`EXIT_ORCHESTRATOR` when the Prefect server failed or went away under a run (its database
down, say) and the run had no failure of its own to report, `EXIT_REPLAY_DIFFERS` when a replayed
month's decision record differs from the stored one, and `EXIT_CRASH` for anything else (a bug or an unexpected failure: the traceback is printed).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_TRAINING = 4
EXIT_TRACKING = 5
EXIT_SOURCE_UNAVAILABLE = 6
EXIT_CHAMPION_BELOW_FLOOR = 7
EXIT_CONFLICT = 8
EXIT_STATE = 9
EXIT_NO_CHAMPION = 10
EXIT_ORCHESTRATOR = 11
EXIT_REPLAY_DIFFERS = 12


class ChurnRetrainError(Exception):
    """Base class: an expected failure with a message a person can act on."""

    exit_code = EXIT_CRASH


class UsageError(ChurnRetrainError):
    """A command line or parameters that do not validate: nothing was run."""

    exit_code = EXIT_USAGE


class DataSourceMisconfigured(UsageError):
    """No data source is configured (a scheduled run never falls back to generated rows), or
    the source cannot be used as given (a missing extra, options that do not fit it)."""


class SnapshotRejected(ChurnRetrainError):
    """The month's data failed a parse guard or the expectation suite; nothing was trained."""

    exit_code = EXIT_REJECTED

    def __init__(self, message: str, *, report: object | None = None) -> None:
        super().__init__(message)
        #: The `ValidationReport` when the suite (not a parse guard) rejected the data.
        self.report = report


class SnapshotUnavailable(ChurnRetrainError):
    """The snapshot's URL answered 5xx/429, did not answer or finish within the deadline, or could
    not be connected to. Transient: the load task retries it (`is_transient`) while the deadline
    leaves time for another attempt, then ends with it."""

    exit_code = EXIT_SOURCE_UNAVAILABLE

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable

    def final(self) -> SnapshotUnavailable:
        """The same failure, not to be retried: the deadline leaves no time for it."""
        return SnapshotUnavailable(str(self), retryable=False)


class ChampionBelowFloor(ChurnRetrainError):
    """The champion misses the rule's floor on this month's fresh rows and no challenger could
    replace it: the decision is recorded and the champion kept, but a person must act."""

    exit_code = EXIT_CHAMPION_BELOW_FLOOR

    def __init__(self, message: str, *, record: object | None = None) -> None:
        super().__init__(message)
        #: The run's `DecisionRecord` (recorded before this was raised), for callers that go
        #: on, such as a simulation reporting the month.
        self.record = record


class TrainingFailed(ChurnRetrainError):
    """PyCaret could not produce a usable challenger from data that passed validation."""

    exit_code = EXIT_TRAINING


class TrackingUnavailable(ChurnRetrainError):
    """The MLflow tracking server or registry cannot be reached or lacks a needed capability."""

    exit_code = EXIT_TRACKING


class TrackingMisconfigured(TrackingUnavailable):
    """Remote tracking is configured incompletely (e.g. DagsHub without a token): fails at start."""


class ServerUnreachable(TrackingUnavailable):
    """No HTTP answer at all: refused, timed out, DNS or TLS failure."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class PromotionLockMissing(ChurnRetrainError):
    """The Prefect global concurrency limit that serialises promotions does not exist."""


class RollbackRefused(ChurnRetrainError):
    """Nothing to roll back to, or the named version cannot become champion."""

    exit_code = EXIT_USAGE


class PruneRefused(ChurnRetrainError):
    """The promotion lock stayed busy: a prune deletes nothing while a promotion is under way."""

    exit_code = EXIT_USAGE


class Conflict(ChurnRetrainError):
    """A move of the champion decided against one champion found another: refused, not applied."""

    exit_code = EXIT_CONFLICT


class StateUnusable(ChurnRetrainError):
    """The state directory or local store cannot be used (read-only, full, corrupt, locked)."""

    exit_code = EXIT_STATE


class NoChampion(ChurnRetrainError):
    """The command needs a champion and the registry, which answered, has none."""

    exit_code = EXIT_NO_CHAMPION


class OrchestratorUnavailable(ChurnRetrainError):
    """The Prefect server a run reports to answered 5xx/429 or went away during the run."""

    exit_code = EXIT_ORCHESTRATOR


class ReplayDiffers(ChurnRetrainError):
    """A replayed month's decision record differs from the stored one (each difference named)."""

    exit_code = EXIT_REPLAY_DIFFERS


class PrefectServerFailed(ChurnRetrainError):
    """The Prefect server this CLI process started did not answer in time, or exited."""


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from (or during), outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:300]


def _transient_status(exc: BaseException) -> int | None:
    """The HTTP status of a server's 5xx/429 answer that MLflow raised, else None."""
    import re
    import sys

    exceptions = sys.modules.get("mlflow.exceptions")  # not imported: no MLflow error exists
    if exceptions is None:
        return None
    if isinstance(exc, exceptions.RestException):  # a JSON error: its code maps to a status
        status = exc.get_http_status_code()
    elif isinstance(exc, exceptions.MlflowException) and (
        found := re.search(r"failed with error code (\d{3})", str(exc))
    ):  # a non-JSON error page, quoted by MLflow's client
        status = int(found.group(1))
    else:
        return None
    return status if status == 429 or 500 <= status <= 599 else None


def unreachable_reason(exc: BaseException, *, timeout_seconds: int | None = None) -> str | None:
    """Why a server could not be talked to right now, or None if it answered for good.

    The one test of "network trouble" (every retry and every "the server went away" message
    uses it): `requests`/`urllib3` connection errors and timeouts, also when MLflow wraps them
    in an `MlflowException` quoting them, and MLflow's errors for a 5xx or 429 answer. An
    answer (401, 403, 404, bad data) or a bug gives None.
    """
    import re

    import requests
    import urllib3

    chain = _exception_chain(exc)
    for error in chain:
        if (status := _transient_status(error)) is not None:
            return f"it answers HTTP {status} ({_last_line(str(error))[:120]})"
    network: tuple[type[BaseException], ...] = (requests.RequestException, ConnectionError)
    network += (urllib3.exceptions.HTTPError, TimeoutError)
    text = " ".join(str(e) for e in chain).lower()
    if not any(isinstance(e, network) for e in chain) and not (
        "api request to" in text and "failed with" in text and "exception" in text
    ):
        return None
    if any(isinstance(e, requests.Timeout | TimeoutError) for e in chain) or "timed out" in text:
        within = f" within {timeout_seconds} s" if timeout_seconds else ""
        return f"no answer{within} (timed out)"
    if "connection refused" in text:
        return "connection refused: nothing listens there (server down?)"
    if found := re.search(r"too many (\d{3}) error responses", text):  # urllib3's retries ran out
        return f"it answers HTTP {found.group(1)} (every retry too)"
    if "name or service not known" in text or "name resolution" in text:
        return "host name not found"
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return "TLS handshake failed"
    return "connection failed (" + _last_line(str(chain[-1])) + ")"


_FREE = "free some space (or move CHURN_RETRAIN_HOME to a larger disk)"
_WRITE = "make it writable (or point CHURN_RETRAIN_HOME at a writable directory)"
_RESTORE = "restore mlflow.db from a backup"
#: Local storage errors that asking again does not mend, by errno: what is wrong, what to do.
_STORAGE_ERRNOS = {
    28: ("no space left on the device", _FREE),  # ENOSPC
    122: ("the disk quota is exceeded", _FREE),  # EDQUOT
    30: ("the file system is read-only", _WRITE),  # EROFS
    13: ("permission denied", _WRITE),  # EACCES
}
#: The same from SQLite (the local MLflow store), by the words of its message.
_SQLITE_PROBLEMS = {
    "database or disk is full": ("no space left on the device", _FREE),
    "attempt to write a readonly database": ("the MLflow database is read-only", _WRITE),
    "unable to open database file": ("the MLflow database cannot be opened", _WRITE),
    "database disk image is malformed": ("the MLflow database is corrupt (truncated?)", _RESTORE),
    "file is not a database": ("the MLflow database is corrupt (not a SQLite file)", _RESTORE),
    "database is locked": (
        "the MLflow database stayed locked by another process",
        "find the process holding it (a stuck command, a tool with the file open: `fuser "
        "mlflow.db`) and stop it, or wait for it",
    ),
}


def storage_problem(exc: BaseException) -> tuple[str, str, str | None] | None:
    """(what is wrong, what to do, the path when known) for a local storage failure that asking
    again does not mend: a full disk, a read-only or forbidden path, a corrupt or locked SQLite
    store; else None."""
    for error in _exception_chain(exc):
        if isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS:
            path = error.filename if isinstance(error.filename, str) else None
            return (*_STORAGE_ERRNOS[error.errno], path)
        text = str(error).lower()
        for words, (problem, advice) in _SQLITE_PROBLEMS.items():
            if words in text:
                return problem, advice, None
    return None


def state_failure(exc: BaseException, home: object) -> StateUnusable | None:
    """`exc` as a named failure of the state directory `home`, when it is a storage problem."""
    found = storage_problem(exc)
    if found is None:
        return None
    problem, advice, path = found
    return StateUnusable(
        f"{path or home}: {problem}. The champion is as it was (a promotion is undone or never "
        f"made): {advice}, then run again."
    )


def _prefect_api_failure(error: BaseException) -> str | None:
    """What went wrong, when `error` is the Prefect client's failed call to its API, else None."""
    import httpx
    from prefect.settings import get_current_settings

    api = (get_current_settings().api.url or "").rstrip("/")
    try:
        request = error.request if isinstance(error, httpx.HTTPError) else None
    except RuntimeError:  # an httpx error raised without its request
        return None
    if request is None or not api or not str(request.url).startswith(api):
        return None
    call = f"{request.method} {str(request.url)[len(api) :].split('?')[0]}"
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        if status != 429 and status < 500:
            return None  # an answer (404, 409, 422): a bug or a refusal, not an outage
        return f"it answered HTTP {status} to {call} (its database may be down: see its log)"
    if isinstance(error, httpx.TransportError):
        return f"{call} failed: {type(error).__name__} ({_last_line(str(error)) or 'no answer'})"
    return None


def orchestrator_failure(exc: BaseException) -> ChurnRetrainError | None:
    """`exc` as a named failure when the Prefect server failed under the run, else None.

    When the run had failed for a reason of its own first (the tracking server lost the same
    database, say), that failure is named too and keeps its exit status.
    """
    from prefect.settings import get_current_settings

    from tasks.settings import redact_uri

    chain = _exception_chain(exc)
    problem = next((found for e in chain if (found := _prefect_api_failure(e))), None)
    if problem is None:
        return None
    api = redact_uri(get_current_settings().api.url or "")
    message = (
        f"the Prefect server {api} failed during the run: {problem}. What the run did before "
        "is recorded in MLflow and nothing after it happened (`churn-retrain status` shows the "
        "champion); its flow run may show Running until the next run marks it Crashed."
    )
    own = next((e for e in chain if isinstance(e, ChurnRetrainError)), None)
    failure = OrchestratorUnavailable(
        message if own is None else f"{message} The run had failed first: {own}"
    )
    if own is not None:
        failure.exit_code = own.exit_code
    return failure


def is_transient(task: object, task_run: object, state: object) -> bool:
    """Prefect `retry_condition_fn`: retry network and storage hiccups, never bad data.

    Network trouble as `unreachable_reason` sees it, or a local `OSError`/`TimeoutError`
    (a storage hiccup), or a `SnapshotUnavailable`; never another of this project's named
    failures (a 4xx answer is a `SnapshotRejected`: asking again gets the same answer).
    """
    exc = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    if isinstance(exc, SnapshotUnavailable):
        return exc.retryable
    if not isinstance(exc, BaseException) or isinstance(exc, ChurnRetrainError):
        return False
    if storage_problem(exc) is not None:  # a full or read-only disk stays so for a retry
        return False
    return unreachable_reason(exc) is not None or isinstance(exc, OSError | TimeoutError)
