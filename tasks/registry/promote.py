"""Move the champion alias: promotion after a decision, and rollback."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Protocol

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.errors import Conflict, RollbackRefused
from tasks.registry.aliases import (
    CHALLENGER,
    PREVIOUS_CHAMPION,
    alias_version,
    champion_version,
    is_missing,
)
from tasks.registry.card import (
    card_after_refusal,
    describe_challenger,
    note_rollback,
    restore_card,
)
from tasks.registry.history import (
    HistoryEvent,
    next_event,
    read_history,
)
from tasks.registry.lease import LeaseLost, check_lease
from tasks.registry.lock import LOCK_TIMEOUT_SECONDS, promotion_lock
from tasks.registry.move import confirm_lease, mark_champion, move_champion
from tasks.registry.promotion import Promotion as Promotion
from tasks.registry.versions import mark_not_promoted, mark_version
from tasks.steps import retried_step, step

logger = logging.getLogger(__name__)


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
            mark_champion(client, name, version)  # in case the first try stopped before it
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
        event = move_champion(
            client,
            name,
            to_version=version,
            current=current,
            action="promote",
            decision_run=decision_run,
            reason=reason,
            planned=planned,
        )
        confirm_lease(lease)
    return Promotion(
        promoted=True,
        conflict=False,
        champion_before=current,
        champion_after=version,
        reason=_moved(version, current),
        event=event,
    )


def _moment(moment: datetime) -> str:
    """`moment` as the history writes times (UTC, to the millisecond)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


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
    expected_champion: str | None,
    to_version: str | None = None,
    reason: str = "",
    asked_at: datetime | None = None,
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
) -> HistoryEvent:
    """Move `champion` back to `to_version`, or to `previous-champion` when not given, if the
    champion is still `expected_champion` (the one the rollback was decided against); else
    `Conflict`, nothing moved: two rollbacks at once apply once, never undo each other. A move
    of the champion after `asked_at` (when the operator asked: the command's start) conflicts
    too, also when it came before this run read the champion.

    Under the same lock, with the same history as promotions. The champion it replaces becomes
    `previous-champion` (so a second, later rollback undoes the first).
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
        if current != expected_champion:
            raise Conflict(
                f"the champion of {name!r} is {_v(current)} now, not {_v(expected_champion)} "
                "as when this rollback was decided (another rollback or a promotion came "
                "between): nothing was moved; check `churn-retrain status` and decide again"
            )
        history = read_history(client, name)
        if asked_at is not None and history and datetime.fromisoformat(history[-1].at) > asked_at:
            last = history[-1]
            raise Conflict(
                f"the champion of {name!r} moved to v{last.to_version} at {last.at} ({last.action}"
                f" by {last.by}), after this rollback was asked for at {_moment(asked_at)}: "
                "nothing was moved; check `churn-retrain status` and decide again"
            )
        target = to_version or alias_version(client, name, PREVIOUS_CHAMPION)
        if target is None:
            target = next(
                (e.from_version for e in reversed(history) if e.to_version == current),
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
        planned = next_event(
            client,
            name,
            action="rollback",
            from_version=current,
            to_version=target,
            decision_run=None,
            reason=reason or "rollback",
        )
        # The restored version's card says so before the move (as the history will).
        card = note_rollback(client, name, planned)
        try:
            event = move_champion(
                client,
                name,
                to_version=target,
                current=current,
                action="rollback",
                decision_run=None,
                reason=reason or "rollback",
                planned=planned,
            )
        except BaseException:
            restore_card(client, name, target, card)
            raise
        confirm_lease(lease)
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
    (`plan_promotion`): the history event to append when it is still the next one.

    First the version's card and holdout lineage, from the run's decision record (written as
    the move will leave it): what can fail is written before the move; a move that fails puts
    the card back, and a refused one rewrites it as the conflict it was."""
    described = describe_challenger(name, version, run_id)
    try:
        if not decision.promote:
            mark_not_promoted(name, version, verdict=decision.verdict)
            return None
        promotion: Promotion = promote_challenger(
            name,
            version,
            expected_champion=before,
            decision_run=run_id,
            reason=_reason(decision),
            planned=planned.event if planned else None,
        )
    except BaseException:
        restore_card(MlflowClient(), name, version, described.previous)
        raise
    if promotion.conflict:
        card_after_refusal(name, version, described, promotion, before)
    return promotion


def _reason(decision: Verdict) -> str:
    return f"{decision.verdict}: {decision.reason}"


def _moved(version: str, before: str | None) -> str:
    return f"v{version} is champion (was {_v(before)})"
