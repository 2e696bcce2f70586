"""The promotion history: one registered-model tag per alias move, read back in order."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from typing import Literal

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict

from tasks.registry.aliases import is_missing

HISTORY_PREFIX = "history."


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
        if is_missing(exc):
            return []
        raise
    events = [
        HistoryEvent.model_validate({"seq": int(key[len(HISTORY_PREFIX) :]), **json.loads(value)})
        for key, value in tags.items()
        if key.startswith(HISTORY_PREFIX) and key[len(HISTORY_PREFIX) :].isdigit()
    ]
    return sorted(events, key=lambda e: e.seq)


def write_event(client: MlflowClient, name: str, event: HistoryEvent) -> None:
    """Add `event` (from `next_event`, under the promotion lock: its number is the next one)."""
    value = event.model_dump(mode="json", exclude={"seq"})
    client.set_registered_model_tag(name, history_key(event.seq), json.dumps(value))


def next_event(
    client: MlflowClient,
    name: str,
    *,
    action: Literal["promote", "rollback"],
    from_version: str | None,
    to_version: str,
    decision_run: str | None,
    reason: str,
) -> HistoryEvent:
    """The event a move made now would append (nothing is written)."""
    history = read_history(client, name)
    return HistoryEvent(
        seq=(history[-1].seq + 1) if history else 1,
        action=action,
        from_version=from_version,
        to_version=to_version,
        by=_actor(),
        at=datetime.now(UTC).isoformat(timespec="milliseconds"),  # orders moves and asks
        decision_run=decision_run,
        flow_run=_flow_run_id(),
        reason=reason[:500],
    )


def history_key(seq: int) -> str:
    """The registered-model tag that holds event `seq`."""
    return f"{HISTORY_PREFIX}{seq:06d}"


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
