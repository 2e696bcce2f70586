"""A move of the champion alias as a Prefect event, so the server can act on it.

Every move (a promotion, a rollback) is announced as `churn-retrain.champion.moved` about the
resource `churn-retrain.model.<name>`, by the process that moved it, once the move and its
history entry are written: the `score/monthly-base` deployment's trigger re-scores the customer
base on it. Prefect's `emit_event` queues the event for a background thread that a short-lived
process (the command line) may end, or whose temporary server it stops, before it is sent; so
the event is sent here with Prefect's events client (`prefect.events.get_events_client`), and
this waits until the server has it (a websocket ping answered after it), at most
`SEND_TIMEOUT_SECONDS`. A lost event never fails the run: it is logged as a warning.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from tasks.runtime.deadline import Deadline
from tasks.settings import redact_uri

if TYPE_CHECKING:
    from prefect.events import Event

    from tasks.registry.history import HistoryEvent
    from tasks.registry.promote import Promotion

CHAMPION_MOVED = "churn-retrain.champion.moved"
#: The resource the event is about: `churn-retrain.model.<registered model name>`.
MODEL_RESOURCE_PREFIX = "churn-retrain.model."
#: How long a run waits for the server to take the event before it gives up on it.
SEND_TIMEOUT_SECONDS = 10.0
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s,;)\"']+")


class ChampionMoved(BaseModel):
    """What the event says: which model, from which version to which, when, why, by whom."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    action: Literal["promote", "rollback"]
    from_version: str | None
    to_version: str
    period: str | None = None  # the retrain's month (a rollback has none)
    verdict: str  # the decision's verdict, or "rollback"
    reason: str = ""
    history_seq: int | None = None  # the entry in the promotion history
    by: str | None = None
    at: str | None = None
    decision_run: str | None = None  # the MLflow run that decided it
    flow_run: str | None = None  # the Prefect flow run that moved it

    @classmethod
    def of(
        cls, model: str, event: HistoryEvent, *, period: str | None, verdict: str
    ) -> ChampionMoved:
        """From the history entry the move wrote."""
        return cls(
            model=model,
            action=event.action,
            from_version=event.from_version,
            to_version=event.to_version,
            period=period,
            verdict=verdict,
            reason=event.reason,
            history_seq=event.seq,
            by=event.by,
            at=event.at,
            decision_run=event.decision_run,
            flow_run=event.flow_run,
        )


def model_resource_id(model: str) -> str:
    return f"{MODEL_RESOURCE_PREFIX}{model}"


def champion_moved_event(moved: ChampionMoved) -> Event:
    """The Prefect event for `moved` (pure: nothing is sent). URLs in the reason lose their
    credentials and query: an event is shown to anyone who can read the server's UI."""
    from prefect.events import Event

    payload: dict[str, Any] = moved.model_dump(mode="json")
    payload["reason"] = _URL.sub(lambda found: redact_uri(found.group(0)), moved.reason)[:500]
    versions = f"churn-retrain.model-version.{moved.model}."
    related = [
        {
            "prefect.resource.id": f"{versions}{moved.to_version}",
            "prefect.resource.role": "champion",
            "prefect.resource.name": f"{moved.model} v{moved.to_version}",
        }
    ]
    if moved.from_version is not None:
        related.append(
            {
                "prefect.resource.id": f"{versions}{moved.from_version}",
                "prefect.resource.role": "previous-champion",
                "prefect.resource.name": f"{moved.model} v{moved.from_version}",
            }
        )
    if moved.flow_run is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{moved.flow_run}",
                "prefect.resource.role": "flow-run",
            }
        )
    return Event.model_validate(
        {
            "event": CHAMPION_MOVED,
            "resource": {
                "prefect.resource.id": model_resource_id(moved.model),
                "prefect.resource.name": moved.model,
            },
            "related": related,
            "payload": payload,
        }
    )


def emit_champion_moved(
    moved: ChampionMoved, *, timeout_seconds: float = SEND_TIMEOUT_SECONDS
) -> Event | None:
    """Send the event to the Prefect server of this process and wait until it has it; None
    (and a warning) when it could not be sent, or with no Prefect API to send it to."""
    from prefect.settings import PREFECT_API_URL

    what = f"{CHAMPION_MOVED} ({moved.model} {_v(moved.from_version)} -> v{moved.to_version})"
    if not PREFECT_API_URL.value():  # no server, so no deployment to trigger
        _logger().warning("Event %s not sent: no Prefect API configured", what)
        return None
    try:
        event = champion_moved_event(moved)
        # The client reads its settings (the API URL a command set for its temporary server)
        # from this thread's context; the send runs in its own thread and event loop.
        context = contextvars.copy_context()
        Deadline.after(timeout_seconds).call(lambda: context.run(asyncio.run, _send(event)))
    except Exception as exc:  # a lost event must not fail a run whose move is done
        _logger().warning(
            "Event %s NOT SENT (%s: %s): nothing reacts to this move (re-score the base by hand: "
            "run the deployment score/monthly-base)",
            what,
            type(exc).__name__,
            exc,
        )
        return None
    _logger().info("Event %s sent (id %s)", what, event.id)
    return event


def announce_promotion(
    model: str, promotion: Promotion | None, *, period: str, verdict: str
) -> Event | None:
    """The event of a promotion that moved the alias; nothing for a tie or a refused move."""
    if promotion is None or not promotion.promoted or promotion.champion_after is None:
        return None
    if promotion.event is not None:
        moved = ChampionMoved.of(model, promotion.event, period=period, verdict=verdict)
    else:  # a retry found this run's move done: the attempt that moved it failed after it
        moved = ChampionMoved(
            model=model,
            action="promote",
            from_version=promotion.champion_before,
            to_version=promotion.champion_after,
            period=period,
            verdict=verdict,
            reason=promotion.reason,
            flow_run=_flow_run_id(),
        )
    return emit_champion_moved(moved)


def announce_rollback(model: str, event: HistoryEvent) -> Event | None:
    """The event of a rollback (the alias moved: a refused rollback raised before)."""
    return emit_champion_moved(ChampionMoved.of(model, event, period=None, verdict="rollback"))


async def _send(event: Event) -> None:
    from prefect.events import get_events_client

    # checkpoint_every=1: `emit` returns once a ping sent after the event is answered, so the
    # server has the event when this returns.
    async with get_events_client(reconnection_attempts=2, checkpoint_every=1) as client:
        await client.emit(event)


def _flow_run_id() -> str | None:
    from prefect import runtime

    found = runtime.flow_run.id
    return str(found) if found else None


def _v(version: str | None) -> str:
    return "none" if version is None else f"v{version}"


def _logger() -> Any:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger, get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:  # outside a flow (tests, the command line before a flow)
        return get_logger(__name__)
