"""Roll the champion back: to the previous champion, or to a named version."""

from __future__ import annotations

from prefect import flow, runtime

from flows.parameters import RollbackParameters
from tasks.alerts.hook import flow_run_url
from tasks.alerts.notices import notify_rollback
from tasks.logs import keep_expected_failures_short
from tasks.registry.aliases import find_champion
from tasks.registry.events import announce_rollback
from tasks.registry.history import HistoryEvent
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.promote import rollback_champion
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking


@flow(name="rollback", log_prints=True)
def rollback(params: RollbackParameters | None = None) -> HistoryEvent:
    """Move `champion` back under the promotion lock; the move joins the promotion history."""
    from prefect.artifacts import create_markdown_artifact

    keep_expected_failures_short()  # a refused rollback is logged as its message
    params = params or RollbackParameters()
    settings = Settings()
    tracking = configure_tracking(settings, params.model.resolve(settings))
    ensure_promotion_lock(tracking.model_name, create=params.create_promotion_lock)
    # Decided against the champion seen now (or named): refused if it changes before the move.
    seen = find_champion(tracking.model_name)
    expected = params.expected_champion or (seen.version if seen else None)
    event = rollback_champion(
        tracking.model_name,
        expected_champion=expected,
        to_version=params.to_version,
        reason=params.reason,
        asked_at=params.asked_at,
    )
    announce_rollback(tracking.model_name, event)  # it re-scores the base
    text = (
        f"{tracking.model_name}: champion rolled back from v{event.from_version} to "
        f"v{event.to_version} (history #{event.seq}, by {event.by}): {event.reason}"
    )
    print(text)
    notify_rollback(
        text,
        Settings(),
        flow_run_name=str(runtime.flow_run.name),
        flow_run_id=str(runtime.flow_run.id),
        flow_run_url=flow_run_url(),
    )
    create_markdown_artifact(
        key="rollback",
        markdown=f"## Rollback of `{tracking.model_name}`\n\nChampion moved from "
        f"v{event.from_version} to **v{event.to_version}** by {event.by} at {event.at}: "
        f"{event.reason}. History entry #{event.seq}.",
        description="Champion rollback",
    )
    return event
