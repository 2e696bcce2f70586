"""Deliver an alert to webhooks, Apprise URLs and Prefect notification blocks, each bounded in time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.alerts.message import Alert
from tasks.runtime.deadline import Deadline, DeadlineExceeded
from tasks.settings import Settings, redact_endpoint

if TYPE_CHECKING:
    pass


NOT_DELIVERED = "ALERT NOT DELIVERED"


_USER_AGENT = "churn-retrain-alert"

logger = logging.getLogger(__name__)


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
            try:
                Deadline.after(timeout + 1.0).call(send)
            except DeadlineExceeded:
                raise TimeoutError(f"no answer within {timeout + 1.0:g} s") from None
            return Delivery(destination, True, attempt, None, time.monotonic() - started)
        except _Permanent as exc:
            error = _scrub(str(exc), secrets)
            break
        except Exception as exc:
            error = _scrub(_describe_error(exc, timeout), secrets)
        if attempt <= retries:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 2.0))
    return Delivery(destination, False, attempt, error, time.monotonic() - started)


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
