"""Tell a person when a run fails: the flow's `on_failure` hook and the delivery behind it.

Where alerts go is a deployment setting (tasks/settings.py): `CHURN_RETRAIN_ALERT_BLOCK` names a
saved Prefect notification block (Slack, custom webhook, email, ...), `CHURN_RETRAIN_ALERT_URL`
is a plain webhook (JSON POST with a Slack-compatible `text`) or an Apprise URL (mailto://...).
Each attempt has a hard deadline and attempts are bounded, so a receiver that is down or never
answers cannot hang the run; an alert that cannot be delivered is logged as
"ALERT NOT DELIVERED" and the run still ends Failed with its own error.

An alert carries the flow run, the period, the source (redacted), the failed checks by column
with counts and a link to the gate report: never raw customer values, never secrets. Messages
of our own errors are written to be safe; any other exception is named by its type only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from tasks.data import current_period, resolve_source
from tasks.errors import ChurnRetrainError, SnapshotRejected
from tasks.gate_report import (
    REPORT_HTML,
    ColumnFailures,
    failures_by_column,
    rejection_failures,
    report_directory,
)
from tasks.settings import Settings, redact_endpoint, redact_uri

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun
    from prefect.events.schemas.automations import AutomationCore
    from prefect.states import State

NOT_DELIVERED = "ALERT NOT DELIVERED"
_MAX_MESSAGE = 3000
_USER_AGENT = "churn-retrain-alert"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """What a person needs to act on a failed run."""

    flow: str
    flow_run_name: str
    flow_run_id: str
    state: str
    period: str
    source: str
    error: str
    message: str
    failures: tuple[ColumnFailures, ...] = ()
    report: str | None = None
    flow_run_url: str | None = None

    @property
    def subject(self) -> str:
        what = "snapshot REJECTED" if self.error == "SnapshotRejected" else f"run {self.state}"
        return f"churn-retrain {self.period}: {what} ({self.flow} run {self.flow_run_name})"

    def text(self) -> str:
        lines = [
            self.subject,
            f"Flow run: {self.flow}/{self.flow_run_name} ({self.flow_run_id}), state {self.state}",
            f"Period: {self.period}",
            f"Source: {self.source}",
            f"Error: {self.error}: {self.message}",
        ]
        if self.failures:
            lines.append("Failed checks by column:")
            for entry in self.failures:
                rows = "" if entry.rows is None else f", {entry.rows:,} rows"
                lines.append(
                    f"  {entry.column}: {entry.checks} failed{rows}: {'; '.join(entry.problems)}"
                )
        if self.report:
            lines.append(f"Report: {self.report}")
        if self.flow_run_url:
            lines.append(f"Flow run: {self.flow_run_url}")
        lines.append("The champion model and the registry were not changed by this run's gate.")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """JSON for a webhook: `text` for Slack-style receivers, the fields for machines."""
        fields = json.loads(json.dumps(asdict(self)))  # tuples become lists, as received
        return {"text": self.text(), "subject": self.subject, "alert": fields}


@dataclass(frozen=True)
class Delivery:
    """How one destination fared."""

    destination: str
    delivered: bool
    attempts: int
    error: str | None = None
    seconds: float = 0.0


class _Permanent(Exception):
    """A failure retrying cannot fix (bad URL, unknown block, 4xx)."""


# --- building the alert: pure --------------------------------------------------------------------


def build_alert(
    *,
    flow: str,
    flow_run_name: str,
    flow_run_id: str,
    state: str,
    period: str,
    source: str,
    error: BaseException | None,
    report: str | None = None,
    flow_run_url: str | None = None,
) -> Alert:
    """An alert from a run's outcome; only our own errors' messages are quoted."""
    failures: tuple[ColumnFailures, ...] = ()
    if isinstance(error, SnapshotRejected):
        failures = tuple(failures_by_column(rejection_failures(error)))
        reported = getattr(error.report, "source", None)
        source = reported if isinstance(reported, str) else source
    if error is None:
        name, message = "unknown", f"the run ended {state} without an exception"
    elif isinstance(error, ChurnRetrainError):
        name, message = type(error).__name__, str(error)[:_MAX_MESSAGE]
    else:
        # Library messages can quote data or URLs with credentials: the type only.
        name = type(error).__name__
        message = "see the flow run's logs for the traceback"
    return Alert(
        flow=flow,
        flow_run_name=flow_run_name,
        flow_run_id=flow_run_id,
        state=state,
        period=period,
        source=source,
        error=name,
        message=message,
        failures=failures,
        report=report,
        flow_run_url=flow_run_url,
    )


def describe_source(parameters: dict[str, Any], period: str) -> str:
    """The run's data source from its parameters, fit for an alert (credentials removed)."""
    params = parameters.get("params") or {}
    data = params.get("data") if isinstance(params, dict) else None
    return redact_uri(resolve_source(data, period)) if data else "generated data"


def run_period(parameters: dict[str, Any], started: datetime | None) -> str:
    """The period the run worked on: its parameter, else the month it was scheduled for."""
    params = parameters.get("params") or {}
    period = params.get("period") if isinstance(params, dict) else None
    return str(period) if period else current_period(started)


# --- delivery ----------------------------------------------------------------------------------


def deliver_alert(alert: Alert, settings: Settings) -> list[Delivery]:
    """Send the alert to every configured destination; never raises, never hangs."""
    deliveries = []
    timeout, retries = settings.alert_timeout_seconds, settings.alert_retries
    if settings.alert_block:
        block = settings.alert_block
        deliveries.append(
            _deliver(
                f"block {block}",
                lambda: _send_to_block(block, alert, timeout),
                timeout=timeout,
                retries=retries,
            )
        )
    if settings.alert_url is not None:
        url = settings.alert_url.get_secret_value()
        send = _post_json if url.startswith(("http://", "https://")) else _send_apprise
        deliveries.append(
            _deliver(
                redact_endpoint(url),
                lambda: send(url, alert, timeout),
                timeout=timeout,
                retries=retries,
                secrets=(url,),
            )
        )
    return deliveries


def _deliver(
    destination: str,
    send: Callable[[], None],
    *,
    timeout: float,
    retries: int,
    secrets: tuple[str, ...] = (),
) -> Delivery:
    started = time.monotonic()
    error = "not attempted"
    attempt = 0
    for attempt in range(1, retries + 2):
        try:
            # The send's own timeouts come first; the deadline catches whatever ignores them.
            _call_with_deadline(send, timeout + 1.0)
            return Delivery(destination, True, attempt, None, time.monotonic() - started)
        except _Permanent as exc:
            error = _scrub(str(exc), secrets)
            break
        except Exception as exc:
            error = _scrub(_describe_error(exc, timeout), secrets)
        if attempt <= retries:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 2.0))
    return Delivery(destination, False, attempt, error, time.monotonic() - started)


def _call_with_deadline(send: Callable[[], None], seconds: float) -> None:
    """Run `send` in a daemon thread; give up on it after `seconds` (it cannot block exit)."""
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            send()
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="churn-retrain-alert", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if outcome.get("error") is not None:
        raise outcome["error"]  # type: ignore[misc]


def _post_json(url: str, alert: Alert, timeout: float) -> None:
    import httpx

    try:
        response = httpx.post(
            url,
            json=alert.payload(),
            timeout=timeout,
            headers={"user-agent": _USER_AGENT},
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise TimeoutError(f"timed out after {timeout:g} s") from exc
    except httpx.ConnectError as exc:
        raise ConnectionError(f"cannot connect ({exc})") from exc
    _check_status(response.status_code)


def _check_status(status: int) -> None:
    if 200 <= status < 300:
        return
    if status in (408, 429) or status >= 500:
        raise ConnectionError(f"HTTP {status}")
    raise _Permanent(f"HTTP {status}: the receiver refused the alert (check the URL)")


def _send_apprise(url: str, alert: Alert, timeout: float) -> None:
    import apprise

    client = apprise.Apprise()
    if not client.add(url):
        raise _Permanent("not a supported notification URL (http(s) webhook or Apprise URL)")
    if not client.notify(body=alert.text(), title=alert.subject):
        raise ConnectionError("the notification service did not accept the alert")


def _send_to_block(reference: str, alert: Alert, timeout: float) -> None:
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    if "/" not in reference:
        raise _Permanent(
            f"CHURN_RETRAIN_ALERT_BLOCK must be TYPE/NAME (e.g. slack-webhook/{reference})"
        )
    try:
        block = Block.load(reference)
    except ValueError as exc:  # Prefect's "Unable to find block document named ..."
        raise _Permanent(f"no saved block {reference!r}") from exc
    if not isinstance(block, NotificationBlock):
        raise _Permanent(f"block {reference!r} is a {type(block).__name__}, not a notification")
    if hasattr(block, "timeout"):
        block.timeout = timeout  # CustomWebhookNotificationBlock: its default is 10 s
    with block.raise_on_failure():
        # Sync call (no event loop in this thread); mypy sees async_dispatch's coroutine type.
        block.notify(body=alert.text(), subject=alert.subject)  # type: ignore[unused-coroutine]


def _describe_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return str(exc) or f"timed out after {timeout:g} s"
    if isinstance(exc, ConnectionError):
        return str(exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"{type(exc).__name__}: HTTP {status}"
    # Other messages may carry the destination's URL (and its token): the type only.
    return type(exc).__name__


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, redact_endpoint(secret))
    return text


# --- the hook ----------------------------------------------------------------------------------


def alert_on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect `on_failure`/`on_crashed` hook: send the alert; say so loudly if it cannot go out.

    Never raises: the run's own error is what its state must show.
    """
    from prefect.logging.loggers import flow_run_logger

    log = flow_run_logger(flow_run, flow)
    try:
        settings = Settings()
        alert = alert_for_run(flow.name, flow_run, state, settings)
        if settings.alert_block is None and settings.alert_url is None:
            log.warning(
                "No alert destination configured (CHURN_RETRAIN_ALERT_URL or "
                "CHURN_RETRAIN_ALERT_BLOCK): nobody was notified that this run failed"
            )
            return
        deliveries = deliver_alert(alert, settings)
    except Exception as exc:
        log.error("%s: the alert could not be prepared (%s)", NOT_DELIVERED, type(exc).__name__)
        return
    for delivery in deliveries:
        if delivery.delivered:
            log.info(
                "Alert sent to %s (attempt %d, %.1f s)",
                delivery.destination,
                delivery.attempts,
                delivery.seconds,
            )
        else:
            log.error(
                "%s to %s after %d attempt(s) in %.1f s: %s. The run failed with %s; "
                "tell the team by hand.",
                NOT_DELIVERED,
                delivery.destination,
                delivery.attempts,
                delivery.seconds,
                delivery.error,
                alert.error,
            )


def alert_for_run(
    flow_name: str, flow_run: FlowRun, state: State[Any], settings: Settings
) -> Alert:
    """Gather the alert's facts from the run: parameters, exception, report, UI link."""
    parameters = dict(flow_run.parameters or {})
    # As the flow does: the month the run was scheduled for, not the one it started in.
    started = flow_run.expected_start_time or flow_run.start_time or datetime.now(UTC)
    period = run_period(parameters, started)
    report = report_directory(settings, str(flow_run.id)) / REPORT_HTML
    return build_alert(
        flow=flow_name,
        flow_run_name=flow_run.name,
        flow_run_id=str(flow_run.id),
        state=state.name or str(state.type),
        period=period,
        source=describe_source(parameters, period),
        error=_state_error(state),
        report=report.as_uri() if report.is_file() else None,
        flow_run_url=_flow_run_url(str(flow_run.id)),
    )


def _state_error(state: State[Any]) -> BaseException | None:
    try:
        result = state.result(raise_on_failure=False)
    except Exception:  # the result could not be read back: the type of the state is enough
        return None
    return result if isinstance(result, BaseException) else None


def _flow_run_url(flow_run_id: str) -> str | None:
    """A UI link when a real Prefect server is configured (a temporary one is gone by then)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    if not PREFECT_API_URL.value():
        return None
    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


# --- the server-side automation ----------------------------------------------------------------

_AUTOMATIONS = Path(__file__).resolve().parents[1] / "automations"
AUTOMATION_FILE = _AUTOMATIONS / "retrain-failed.yaml"
#: Marks a run whose heartbeats stopped Crashed, which AUTOMATION_FILE then alerts on.
UNRESPONSIVE_AUTOMATION_FILE = _AUTOMATIONS / "retrain-unresponsive.yaml"
AUTOMATION_FILES = (AUTOMATION_FILE, UNRESPONSIVE_AUTOMATION_FILE)
#: The id in the committed YAML, replaced by the chosen block's when the automation is created.
PLACEHOLDER_BLOCK_ID = UUID(int=0)


def automation_definition(
    path: Path = AUTOMATION_FILE,
    *,
    block: str | None = None,
    block_document_id: UUID | None = None,
) -> AutomationCore:
    """The automation in `path` as Prefect's model, its notifications sent through `block`.

    `block` (TYPE/NAME) is looked up on the server in PREFECT_API_URL; `block_document_id`
    skips the lookup. With neither, the placeholder id stays (enough to check the file).
    """
    import yaml
    from prefect.events.schemas.automations import AutomationCore

    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if block is not None:
        block_document_id = _block_document_id(block)
    if block_document_id is not None:
        for action in raw.get("actions", []):
            if action.get("block_document_id") == str(PLACEHOLDER_BLOCK_ID):
                action["block_document_id"] = str(block_document_id)
    return AutomationCore.model_validate(raw)


def install_automation(path: Path = AUTOMATION_FILE, *, block: str) -> UUID:
    """Create the automation on the server, replacing any earlier one of the same name."""
    from prefect.client.orchestration import get_client

    automation = automation_definition(path, block=block)
    with get_client(sync_client=True) as client:
        for earlier in client.read_automations_by_name(automation.name):
            client.delete_automation(earlier.id)
        return client.create_automation(automation)


def _block_document_id(reference: str) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    slug, _, name = reference.partition("/")
    if not slug or not name:
        raise ValueError(
            f"block must be TYPE/NAME (e.g. slack-webhook/churn-alerts), got {reference!r}"
        )
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type_slug=slug)
        except ObjectNotFound as exc:
            raise ValueError(f"no saved block {reference!r} on the Prefect server") from exc
    return document.id
