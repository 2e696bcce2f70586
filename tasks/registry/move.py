"""The move of the champion alias itself, shared by promotion and rollback: aliases, history
and marks set as one step, undone if any part of it fails."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from mlflow.tracking import MlflowClient

from tasks.registry.aliases import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, alias_version, set_alias
from tasks.registry.history import HistoryEvent, history_key, next_event, write_event
from tasks.registry.lease import Lease, LeaseLost, check_lease
from tasks.registry.versions import PROMOTED_TAG

logger = logging.getLogger(__name__)


def move_champion(
    client: MlflowClient,
    name: str,
    *,
    to_version: str,
    current: str | None,
    action: Literal["promote", "rollback"],
    decision_run: str | None,
    reason: str,
    planned: HistoryEvent | None = None,
) -> HistoryEvent:
    """Move `champion` (and `previous-champion`), record it and mark the new champion; if any
    of it fails, undo what was done, so the registry is never left half moved. Call under the
    promotion lock, after everything else the move needs is written."""
    previous_before = alias_version(client, name, PREVIOUS_CHAMPION)
    challenger_before = alias_version(client, name, CHALLENGER)
    promoted_tag_before = _tag(client, name, to_version, PROMOTED_TAG)
    written: HistoryEvent | None = None
    try:
        client.set_registered_model_alias(name, CHAMPION, to_version)
        if current is not None:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current)
        event = next_event(
            client, name, action=action, from_version=current, to_version=to_version,
            decision_run=decision_run, reason=reason,
        )  # fmt: skip
        if planned is not None and planned.model_copy(update={"at": event.at}) == event:
            event = planned  # still the next one: the record written before the move names it
        write_event(client, name, event)
        written = event
        mark_champion(client, name, to_version)
    except BaseException as exc:
        logger.error(
            "Moving the champion of %r to v%s failed (%s): undoing it", name, to_version, exc
        )
        _undo(client, name, written, undo=[
            lambda: set_alias(client, name, CHAMPION, current),
            lambda: set_alias(client, name, PREVIOUS_CHAMPION, previous_before),
            lambda: set_alias(client, name, CHALLENGER, challenger_before),
            lambda: _set_tag(client, name, to_version, PROMOTED_TAG, promoted_tag_before),
        ])  # fmt: skip
        raise
    return event


def _undo(
    client: MlflowClient, name: str, event: HistoryEvent | None, *, undo: list[Callable[[], Any]]
) -> None:
    """Each step of `undo`, then the history entry `event` removed; a step that fails is said
    (with what to check) and the others still run."""
    steps = list(undo)
    if event is not None:
        steps.append(lambda: client.delete_registered_model_tag(name, history_key(event.seq)))
    for step_ in steps:
        try:
            step_()
        except Exception as exc:  # the first failure is re-raised by the caller
            logger.error(
                "Could not undo part of a champion move of %r (%s): check `churn-retrain status`",
                name,
                exc,
            )


def _tag(client: MlflowClient, name: str, version: str, key: str) -> str | None:
    return client.get_model_version(name, version).tags.get(key)


def _set_tag(client: MlflowClient, name: str, version: str, key: str, value: str | None) -> None:
    if value is None:
        client.delete_model_version_tag(name, version, key)
    else:
        client.set_model_version_tag(name, version, key, value)


def mark_champion(client: MlflowClient, name: str, version: str) -> None:
    """Tag the new champion promoted and take `challenger` off it (idempotent)."""
    client.set_model_version_tag(name, version, PROMOTED_TAG, "true")
    if alias_version(client, name, CHALLENGER) == version:
        set_alias(client, name, CHALLENGER, None)


def confirm_lease(lease: Lease) -> None:
    """After a move: a lease lost during it means another move may have overlapped it."""
    try:
        check_lease(lease, margin_seconds=0)
    except LeaseLost as exc:
        logger.error(
            "The champion alias moved, but %s: another promotion may have overlapped this one; "
            "check `churn-retrain status`",
            exc,
        )
