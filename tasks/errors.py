"""Exceptions a run can end with. Each maps to a distinct CLI exit status."""

from __future__ import annotations


class ChurnRetrainError(Exception):
    """Base class: an expected failure with a message a person can act on."""

    exit_code = 1


class SnapshotRejected(ChurnRetrainError):
    """The month's data failed a parse guard or the expectation suite; nothing was trained."""

    exit_code = 3

    def __init__(self, message: str, *, report: object | None = None) -> None:
        super().__init__(message)
        #: The `ValidationReport` when the suite (not a parse guard) rejected the data.
        self.report = report


class TrainingFailed(ChurnRetrainError):
    """PyCaret could not produce a usable challenger from data that passed validation."""

    exit_code = 4


class TrackingUnavailable(ChurnRetrainError):
    """The MLflow tracking server or registry cannot be reached or lacks a needed capability."""

    exit_code = 5


class TrackingMisconfigured(TrackingUnavailable):
    """Remote tracking is configured incompletely (e.g. DagsHub without a token): fails at start."""


def is_transient(task: object, task_run: object, state: object) -> bool:
    """Prefect `retry_condition_fn`: retry network and storage hiccups, never bad data."""
    exc = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    return isinstance(exc, OSError | TimeoutError) and not isinstance(exc, ChurnRetrainError)
