"""The MLflow model registry: find the champion, register challengers, move aliases safely.

Every alias move (promotion or rollback) happens under a Prefect global concurrency limit of
one slot per model (`promotion_lock`), re-reads the champion alias inside the lock and refuses
if it is not what the caller compared against, keeps the old champion reachable as
`previous-champion`, and appends an event to the model's promotion history. MLflow's alias
writes are last-writer-wins and keep no history; the lock and the history make up for both.

The history is one registered-model tag per event (`history.000001`, ...; compact JSON), so no
tag grows without bound whatever the server's tag-size limit.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from tasks.errors import ChurnRetrainError, is_transient
from tasks.evaluation import Decision
from tasks.model import keep_pycaret_quiet

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"
#: The latest registered version that was not promoted.
CHALLENGER = "challenger"
HISTORY_PREFIX = "history."
#: Seconds to wait for the promotion lock before giving up (the verdict becomes `conflict`).
LOCK_TIMEOUT_SECONDS = 120.0
#: A holder that died releases the lock when its lease runs out (renewed while alive).
LOCK_LEASE_SECONDS = 60.0


class PromotionLockMissing(ChurnRetrainError):
    """The Prefect global concurrency limit that serialises promotions does not exist."""


class RollbackRefused(ChurnRetrainError):
    """Nothing to roll back to, or the named version cannot become champion."""

    exit_code = 2


@dataclass(frozen=True)
class ChampionRef:
    """Which registered version holds the `champion` alias."""

    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{CHAMPION}"


def _is_missing(exc: MlflowException) -> bool:
    return (
        exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        or "not found" in str(exc).lower()
    )


def champion_version(client: MlflowClient, name: str) -> str | None:
    """The version number `champion` points at, or None with no model or no alias."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        # MLflow's basic-auth server answers 403, not 404, for a model that does not exist yet
        # (a non-admin may not learn which names exist): before the first registration.
        if exc.error_code == "PERMISSION_DENIED" and not _model_exists(client, name):
            return None
        raise


def _model_exists(client: MlflowClient, name: str) -> bool:
    return bool(client.search_registered_models(filter_string=f"name='{name}'", max_results=1))


@task(name="find-champion", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def find_champion(name: str) -> ChampionRef | None:
    """The current champion, or None before the first promotion."""
    client = MlflowClient()
    version = champion_version(client, name)
    if version is None:
        return None
    return ChampionRef(
        name=name, version=version, run_id=client.get_model_version(name, version).run_id
    )


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version `alias` points at, or None."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise


def _set_alias(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    """Point `alias` at `version`, or remove it for None."""
    if version is None:
        try:
            client.delete_registered_model_alias(name, alias)
        except MlflowException as exc:
            if not _is_missing(exc):
                raise
    else:
        client.set_registered_model_alias(name, alias, version)


# --------------------------------------------------------------------------------------------
# Promotion history


class HistoryEvent(BaseModel):
    """One move of the champion alias."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    action: Literal["promote", "rollback"]
    from_version: str | None
    to_version: str
    by: str
    at: str
    decision_run: str | None = None
    flow_run: str | None = None
    reason: str = ""


def read_history(client: MlflowClient, name: str) -> list[HistoryEvent]:
    """The model's alias moves, oldest first (empty for a model never promoted)."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if _is_missing(exc):
            return []
        raise
    events = [
        HistoryEvent.model_validate({"seq": int(key[len(HISTORY_PREFIX) :]), **json.loads(value)})
        for key, value in tags.items()
        if key.startswith(HISTORY_PREFIX) and key[len(HISTORY_PREFIX) :].isdigit()
    ]
    return sorted(events, key=lambda e: e.seq)


def _append_history(
    client: MlflowClient,
    name: str,
    *,
    action: Literal["promote", "rollback"],
    from_version: str | None,
    to_version: str,
    decision_run: str | None,
    reason: str,
) -> HistoryEvent:
    """Add one event (call under the promotion lock: the next number is read, then written)."""
    history = read_history(client, name)
    event = HistoryEvent(
        seq=(history[-1].seq + 1) if history else 1,
        action=action,
        from_version=from_version,
        to_version=to_version,
        by=_actor(),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        decision_run=decision_run,
        flow_run=_flow_run_id(),
        reason=reason[:500],
    )
    value = event.model_dump(mode="json", exclude={"seq"})
    client.set_registered_model_tag(name, f"{HISTORY_PREFIX}{event.seq:06d}", json.dumps(value))
    return event


def _actor() -> str:
    """Who moved the alias: CHURN_RETRAIN_ACTOR, else the OS user."""
    explicit = os.environ.get("CHURN_RETRAIN_ACTOR")
    if explicit:
        return explicit[:100]
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return os.environ.get("USER") or "unknown"


def _flow_run_id() -> str | None:
    from prefect import runtime

    run_id = runtime.flow_run.id
    return None if run_id is None else str(run_id)


# --------------------------------------------------------------------------------------------
# The promotion lock


def promotion_lock_name(model_name: str) -> str:
    """The Prefect global concurrency limit serialising alias moves of `model_name`."""
    return "churn-retrain-promote-" + re.sub(r"[^A-Za-z0-9_.-]", "-", model_name)


@task(
    name="ensure-promotion-lock",
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def ensure_promotion_lock(model_name: str, *, create: bool) -> str:
    """Check the promotion lock exists with one slot (creating it if `create`); its name.

    Runs before training, so a missing lock fails the run before anything changes.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = promotion_lock_name(model_name)
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            if not create:
                raise PromotionLockMissing(
                    f"the Prefect global concurrency limit {name!r} does not exist; create it "
                    f"with `make promotion-lock` (prefect gcl create {name} --limit 1)"
                ) from None
            # Created meanwhile by a concurrent run: just as good.
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            return name
    if limit.limit != 1 or not limit.active:
        raise PromotionLockMissing(
            f"the Prefect global concurrency limit {name!r} must be active with limit 1 "
            f"(it has limit {limit.limit}, active={limit.active}); it is the promotion mutex"
        )
    return name


@contextmanager
def promotion_lock(
    model_name: str, *, timeout_seconds: float = LOCK_TIMEOUT_SECONDS
) -> Iterator[None]:
    """Hold the model's promotion lock; a missing limit raises instead of being skipped."""
    from prefect.concurrency.sync import concurrency

    with concurrency(
        promotion_lock_name(model_name),
        occupy=1,
        strict=True,
        timeout_seconds=timeout_seconds,
        lease_duration=LOCK_LEASE_SECONDS,
    ):
        yield


# --------------------------------------------------------------------------------------------
# Champion lookup and loading


@task(name="find-missing-champion", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def find_missing_champion(name: str) -> str | None:
    """With no `champion` alias: why, if the history says there was one (None if never)."""
    client = MlflowClient()
    history = read_history(client, name)
    if not history or champion_version(client, name) is not None:
        return None
    last = history[-1].to_version
    try:
        client.get_model_version(name, last)
    except MlflowException as exc:
        if _is_missing(exc):
            return f"champion v{last} (last in the promotion history) was deleted from the registry"
        raise
    return f"the champion alias was removed from v{last} (last in the promotion history)"


@dataclass(frozen=True)
class LoadedChampion:
    """The champion's model, or why it could not be loaded."""

    model: Any | None
    problem: str | None = None


@task(
    name="load-champion",
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def load_champion(champion: ChampionRef) -> LoadedChampion:
    """The champion as a pyfunc, pinned to the version found (not whatever the alias says now).

    An artifact that will not load is a named outcome, not a crash: the decision record says
    what happened and the rule decides what to do about it.
    """
    import mlflow.pyfunc

    keep_pycaret_quiet()
    try:
        model = mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")
    except Exception as exc:
        if is_unreachable(exc):
            raise
        try:  # a registry that does not answer is an outage, not a broken champion
            MlflowClient().get_model_version(champion.name, champion.version)
        except Exception:
            raise exc from None
        return LoadedChampion(None, f"champion v{champion.version} will not load: {_brief(exc)}")
    return LoadedChampion(model)


def is_unreachable(exc: BaseException) -> bool:
    """Network trouble (retry or fail the run), as opposed to a broken artifact."""
    import requests

    return isinstance(exc, ConnectionError | TimeoutError | requests.RequestException)


def _brief(exc: BaseException) -> str:
    """An exception as one short line (type and first line of the message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# --------------------------------------------------------------------------------------------
# Registration and alias moves


@task(name="register-challenger", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def register_challenger(model_uri: str, name: str, *, tags: dict[str, str]) -> str:
    """Register the challenger's model as a new version, tagged with its verdict from birth.

    It is registered as not promoted (`promoted=false`); only a completed promotion flips it.
    """
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={**tags, "promoted": "false"})
    return str(version.version)


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
) -> HistoryEvent:
    """Move `champion` (and `previous-champion`) and record it; undo the aliases if any step
    fails, so the registry is never left half moved. Call under the promotion lock."""
    previous_before = alias_version(client, name, PREVIOUS_CHAMPION)
    try:
        client.set_registered_model_alias(name, CHAMPION, to_version)
        if current is not None:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current)
        event = _append_history(
            client,
            name,
            action=action,
            from_version=current,
            to_version=to_version,
            decision_run=decision_run,
            reason=reason,
        )
    except BaseException:
        _set_alias(client, name, CHAMPION, current)
        _set_alias(client, name, PREVIOUS_CHAMPION, previous_before)
        raise
    client.set_model_version_tag(name, to_version, "promoted", "true")
    if alias_version(client, name, CHALLENGER) == to_version:
        _set_alias(client, name, CHALLENGER, None)
    return event


@task(
    name="promote-challenger",
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def promote_challenger(
    name: str,
    version: str,
    *,
    expected_champion: str | None,
    decision_run: str | None = None,
    reason: str = "",
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
) -> Promotion:
    """Make `version` champion if the champion is still `expected_champion`.

    Under the promotion lock: re-read the alias, refuse (conflict) if it moved since the
    comparison, else move it, keep the old champion as `previous-champion` and append the move
    to the history. A refused or timed-out promotion marks the version as not promoted.
    """
    client = MlflowClient()
    with ExitStack() as held:
        try:
            held.enter_context(promotion_lock(name, timeout_seconds=lock_timeout_seconds))
        except TimeoutError:
            problem = f"the promotion lock of {name!r} stayed busy for {lock_timeout_seconds:.0f} s"
            return _refused(client, name, version, champion_version(client, name), problem)
        except Exception:
            _mark(client, name, version, verdict="promotion-failed")  # e.g. the lock is missing
            raise
        current = champion_version(client, name)
        if current == version and _already_recorded(client, name, version, decision_run):
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
        event = _move_champion(
            client,
            name,
            to_version=version,
            current=current,
            action="promote",
            decision_run=decision_run,
            reason=reason,
        )
    return Promotion(
        promoted=True,
        conflict=False,
        champion_before=current,
        champion_after=version,
        reason=f"v{version} is champion (was {_v(current)})",
        event=event,
    )


def settle_decision(
    decision: Decision, promotion: Promotion | None, champion_before: str | None
) -> tuple[str, bool, str, str | None]:
    """Verdict, promoted, reason and champion after the promotion step: the comparison's own,
    unless the promotion was refused (then `conflict`, and the champion is whoever holds it)."""
    if promotion is None:
        return decision.verdict, False, decision.reason, champion_before
    if promotion.conflict:
        reason = f"{promotion.reason} (the comparison said: {decision.reason})"
        return "conflict", False, reason, promotion.champion_after
    return decision.verdict, promotion.promoted, decision.reason, promotion.champion_after


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
    _mark(client, name, version, verdict="conflict")
    return Promotion(
        promoted=False,
        conflict=True,
        champion_before=current,
        champion_after=current,
        reason=f"not promoted: {problem}; v{version} is marked `{CHALLENGER}`",
    )


def _mark(client: MlflowClient, name: str, version: str, *, verdict: str) -> None:
    client.set_model_version_tag(name, version, "verdict", verdict)
    client.set_model_version_tag(name, version, "promoted", "false")
    client.set_registered_model_alias(name, CHALLENGER, version)


@task(name="mark-not-promoted", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def mark_not_promoted(name: str, version: str, *, verdict: str) -> None:
    """Tag the version with its verdict and point the `challenger` alias at it."""
    _mark(MlflowClient(), name, version, verdict=verdict)


@task(
    name="roll-back-champion",
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
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
            held.enter_context(promotion_lock(name, timeout_seconds=lock_timeout_seconds))
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
            if _is_missing(exc):
                raise RollbackRefused(f"{name!r} has no version {target}") from None
            raise
        return _move_champion(
            client,
            name,
            to_version=target,
            current=current,
            action="rollback",
            decision_run=None,
            reason=reason or "rollback",
        )


# --------------------------------------------------------------------------------------------
# Status


class VersionSummary(BaseModel):
    """A registered version and the decision run that produced it."""

    model_config = ConfigDict(frozen=True)

    version: str
    run_id: str | None
    registered_at: str
    period: str | None = None
    verdict: str | None = None
    promoted: str | None = None
    scores: dict[str, float] = {}
    difference: str | None = None
    reason: str | None = None


class RegistryStatus(BaseModel):
    """Who is champion, what it scored, and every alias move so far."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    versions: int
    champion: VersionSummary | None
    previous_champion: VersionSummary | None
    challenger: VersionSummary | None
    missing_champion: str | None
    history: list[HistoryEvent]
    #: The champion's scores in the latest retrain that compared against it (same holdout as
    #: that month's challenger): period, run id and metrics.
    latest_comparison: dict[str, Any] | None = None


def _summary(client: MlflowClient, name: str, version: str | None) -> VersionSummary | None:
    if version is None:
        return None
    mv = client.get_model_version(name, version)
    scores: dict[str, float] = {}
    tags: dict[str, str] = {}
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
            scores = {
                k.removeprefix("holdout_"): v
                for k, v in run.data.metrics.items()
                if k.startswith("holdout_")
            }
            tags = run.data.tags
        except MlflowException as exc:
            if not _is_missing(exc):
                raise
    return VersionSummary(
        version=str(mv.version),
        run_id=mv.run_id,
        registered_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
            timespec="seconds"
        ),
        period=mv.tags.get("period"),
        verdict=mv.tags.get("verdict"),
        promoted=mv.tags.get("promoted"),
        scores=scores,
        difference=tags.get("decision.difference"),
        reason=tags.get("decision.reason"),
    )


def registry_status(name: str) -> RegistryStatus | None:
    """The model's champion, previous champion, latest challenger and history (None: no model)."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise
    champion = champion_version(client, name)
    latest = None
    if champion is not None:
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.`decision.champion_version_before` = '{champion}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            run = runs[0]
            latest = {
                "period": run.data.tags.get("data.period"),
                "run_id": run.info.run_id,
                "verdict": run.data.tags.get("decision.verdict"),
                "scores": {
                    k.removeprefix("champion_holdout_"): v
                    for k, v in run.data.metrics.items()
                    if k.startswith("champion_holdout_")
                },
            }
    return RegistryStatus(
        model_name=name,
        versions=len(client.search_model_versions(f"name='{name}'")),
        champion=_summary(client, name, champion),
        previous_champion=_summary(client, name, alias_version(client, name, PREVIOUS_CHAMPION)),
        challenger=_summary(client, name, alias_version(client, name, CHALLENGER)),
        missing_champion=None if champion else find_missing_champion.fn(name),
        history=read_history(client, name),
        latest_comparison=latest,
    )
