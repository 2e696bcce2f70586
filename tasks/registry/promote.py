"""Move the champion alias: promotion after a decision, and rollback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Literal, Protocol

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict

from tasks.errors import RollbackRefused
from tasks.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    alias_version,
    champion_version,
    is_missing,
    set_alias,
)
from tasks.registry.history import (
    HistoryEvent,
    append_history,
    history_key,
    next_event,
    read_history,
)
from tasks.registry.lease import Lease, LeaseLost, check_lease
from tasks.registry.lock import LOCK_TIMEOUT_SECONDS, promotion_lock
from tasks.registry.versions import PROMOTED_TAG, mark_not_promoted, mark_version
from tasks.steps import retried_step, step

logger = logging.getLogger(__name__)


class Promotion(BaseModel):
    """What the promotion step did."""

    model_config = ConfigDict(frozen=True)

    promoted: bool
    conflict: bool
    champion_before: str | None
    champion_after: str | None
    reason: str
    event: HistoryEvent | None = None


def _move_champion(
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
    event: HistoryEvent | None = None
    try:
        client.set_registered_model_alias(name, CHAMPION, to_version)
        if current is not None:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current)
        event = append_history(
            client,
            name,
            action=action,
            from_version=current,
            to_version=to_version,
            decision_run=decision_run,
            reason=reason,
            planned=planned,
        )
        _mark_champion(client, name, to_version)
    except BaseException as exc:
        logger.error(
            "Moving the champion of %r to v%s failed (%s): undoing it", name, to_version, exc
        )
        _undo(client, name, event, undo=[
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


def _mark_champion(client: MlflowClient, name: str, version: str) -> None:
    """Tag the new champion promoted and take `challenger` off it (idempotent)."""
    client.set_model_version_tag(name, version, PROMOTED_TAG, "true")
    if alias_version(client, name, CHALLENGER) == version:
        set_alias(client, name, CHALLENGER, None)


# Guarded, so safe to repeat: a retry after the move finds it done ("already promoted").
@retried_step("promote-challenger")
def promote_challenger(
    name: str,
    version: str,
    *,
    expected_champion: str | None,
    decision_run: str | None = None,
    reason: str = "",
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
    planned: HistoryEvent | None = None,
) -> Promotion:
    """Make `version` champion if the champion is still `expected_champion`.

    Under the promotion lock: re-read the alias, refuse (conflict) if it moved since the
    comparison, else move it, keep the old champion as `previous-champion` and append the move
    to the history. A refused or timed-out promotion marks the version as not promoted.
    """
    client = MlflowClient()
    with ExitStack() as held:
        try:
            lease = held.enter_context(promotion_lock(name, timeout_seconds=lock_timeout_seconds))
        except TimeoutError as exc:
            problem = (
                f"the promotion lock of {name!r} stayed busy for {lock_timeout_seconds:.0f} s "
                f"({exc})"
            )
            return _refused(client, name, version, champion_version(client, name), problem)
        except Exception:
            mark_version(
                client, name, version, verdict="promotion-failed"
            )  # e.g. the lock is missing
            raise
        current = champion_version(client, name)
        if current == version and _already_recorded(client, name, version, decision_run):
            _mark_champion(client, name, version)  # in case the first try stopped before it
            return Promotion(  # a retry after the move succeeded
                promoted=True,
                conflict=False,
                champion_before=expected_champion,
                champion_after=version,
                reason="already promoted by this run",
            )
        if current != expected_champion:
            problem = (
                f"the champion of {name!r} is v{current} now, not "
                f"{_v(expected_champion)} as when compared"
                if current
                else f"the champion of {name!r} is gone, not {_v(expected_champion)} as "
                "when compared"
            )
            return _refused(client, name, version, current, problem)
        try:
            check_lease(lease)  # still ours, for long enough to move the alias
        except LeaseLost as exc:
            return _refused(client, name, version, current, str(exc))
        event = _move_champion(
            client,
            name,
            to_version=version,
            current=current,
            action="promote",
            decision_run=decision_run,
            reason=reason,
            planned=planned,
        )
        _confirm_lease(lease)
    return Promotion(
        promoted=True,
        conflict=False,
        champion_before=current,
        champion_after=version,
        reason=_moved(version, current),
        event=event,
    )


def _confirm_lease(lease: Lease) -> None:
    """After a move: a lease lost during it means another move may have overlapped it."""
    try:
        check_lease(lease, margin_seconds=0)
    except LeaseLost as exc:
        logger.error(
            "The champion alias moved, but %s: another promotion may have overlapped this one; "
            "check `churn-retrain status`",
            exc,
        )


def _v(version: str | None) -> str:
    return "none" if version is None else f"v{version}"


def _already_recorded(
    client: MlflowClient, name: str, version: str, decision_run: str | None
) -> bool:
    history = read_history(client, name)
    return (
        bool(history)
        and history[-1].to_version == version
        and (decision_run is not None and history[-1].decision_run == decision_run)
    )


def _refused(
    client: MlflowClient, name: str, version: str, current: str | None, problem: str
) -> Promotion:
    mark_version(client, name, version, verdict="conflict")
    return Promotion(
        promoted=False,
        conflict=True,
        champion_before=current,
        champion_after=current,
        reason=f"not promoted: {problem}; v{version} is marked `{CHALLENGER}`",
    )


# Not retried: a repeat after the move succeeded would roll back the rollback.
@step("roll-back-champion")
def rollback_champion(
    name: str,
    *,
    to_version: str | None = None,
    reason: str = "",
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
) -> HistoryEvent:
    """Move `champion` back to `to_version`, or to `previous-champion` when not given.

    Under the same lock, with the same history as promotions. The champion it replaces becomes
    `previous-champion` (so a second rollback undoes the first).
    """
    client = MlflowClient()
    with ExitStack() as held:
        try:
            lease = held.enter_context(promotion_lock(name, timeout_seconds=lock_timeout_seconds))
        except TimeoutError:
            raise RollbackRefused(
                f"the promotion lock of {name!r} stayed busy for {lock_timeout_seconds:.0f} s; "
                "a promotion is under way, try again"
            ) from None
        current = champion_version(client, name)
        target = to_version or alias_version(client, name, PREVIOUS_CHAMPION)
        if target is None:
            target = next(
                (
                    e.from_version
                    for e in reversed(read_history(client, name))
                    if e.to_version == current
                ),
                None,
            )
        if target is None:
            raise RollbackRefused(
                f"{name!r} has no previous champion to roll back to; name a version (--to)"
            )
        if target == current:
            raise RollbackRefused(f"v{target} of {name!r} is already the champion")
        try:
            client.get_model_version(name, target)
        except MlflowException as exc:
            if is_missing(exc):
                raise RollbackRefused(f"{name!r} has no version {target}") from None
            raise
        try:
            check_lease(lease)
        except LeaseLost as exc:
            raise RollbackRefused(f"{exc}; try again") from None
        event = _move_champion(
            client,
            name,
            to_version=target,
            current=current,
            action="rollback",
            decision_run=None,
            reason=reason or "rollback",
        )
        _confirm_lease(lease)
        return event


class Verdict(Protocol):
    """What the promotion step reads of a decision (`tasks.decision.verdict.Decision`)."""

    @property
    def promote(self) -> bool: ...
    @property
    def verdict(self) -> str: ...
    @property
    def reason(self) -> str: ...


def plan_promotion(
    name: str, version: str, decision: Verdict, *, before: str | None, run_id: str
) -> Promotion | None:
    """What `promote_or_mark` returns when the move goes as decided (None: no move is due),
    with the history event it will append: the record is written from it before the move."""
    if not decision.promote:
        return None
    event = next_event(
        MlflowClient(), name, action="promote", from_version=before, to_version=version,
        decision_run=run_id, reason=_reason(decision),
    )  # fmt: skip
    return Promotion(
        promoted=True,
        conflict=False,
        champion_before=before,
        champion_after=version,
        reason=_moved(version, before),
        event=event,
    )


def promote_or_mark(
    name: str,
    version: str,
    decision: Verdict,
    *,
    before: str | None,
    run_id: str,
    planned: Promotion | None = None,
) -> Promotion | None:
    """Move the champion alias to `version` when the decision promotes (its outcome); else tag
    the version with its verdict and point the `challenger` alias at it (None). `planned`
    (`plan_promotion`): the history event to append when it is still the next one."""
    if not decision.promote:
        mark_not_promoted(name, version, verdict=decision.verdict)
        return None
    return promote_challenger(
        name,
        version,
        expected_champion=before,
        decision_run=run_id,
        reason=_reason(decision),
        planned=planned.event if planned else None,
    )


def _reason(decision: Verdict) -> str:
    return f"{decision.verdict}: {decision.reason}"


def _moved(version: str, before: str | None) -> str:
    return f"v{version} is champion (was {_v(before)})"
