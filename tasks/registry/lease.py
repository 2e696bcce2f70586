"""The registry lease: one promotion at a time for every client of a registry, whatever Prefect
server (or none shared) each uses.

MLflow has no compare-and-swap for aliases, but creating a registered model is atomic: the
store refuses a second model of the same name (a unique key in SQLite and PostgreSQL; the same
answer over REST). The lease is the registered model `<model>.promotion-lease`, tagged with its
holder and expiry: creating it takes the lease, deleting it gives it back. A holder that died
(SIGKILL, a lost machine) leaves it behind; a waiter takes it over, and says so, once it is past
its expiry, or at once when the holder was a process on the waiter's own host that is gone
(`tasks.runtime.owner`: two CLI runs on one machine never wait out a dead one).

Where the guarantee ends: expiry is judged by the waiter's clock (machines sharing a registry
must agree on the time to well within `LEASE_SECONDS`), and a holder that stalls past its expiry
inside the promotion could overlap the next holder. `check_lease` before the alias moves refuses
to move it on a lease that is gone or about to expire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.registry.aliases import is_missing
from tasks.runtime.owner import Owner

logger = logging.getLogger(__name__)

#: A holder that died releases the lease this long after taking it (a promotion takes seconds).
LEASE_SECONDS = 60.0
#: Seconds a lease must still run for its holder to move an alias.
MOVE_MARGIN_SECONDS = 10.0
_POLL_SECONDS = 0.5
_TOKEN, _OWNER, _EXPIRES = "lease.token", "lease.owner", "lease.expires_at"
_TAKEN = "RESOURCE_ALREADY_EXISTS"


class LeaseLost(RuntimeError):
    """The lease expired or another holder took it over."""


@dataclass(frozen=True)
class Lease:
    """One holding of the lease."""

    name: str
    token: str
    owner: str
    expires_at: float  # epoch seconds

    def until(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec="seconds")


def lease_name(model_name: str) -> str:
    """The registered model that is `model_name`'s promotion lease."""
    return f"{model_name}.promotion-lease"


@contextmanager
def registry_lease(
    model_name: str,
    *,
    timeout_seconds: float,
    lease_seconds: float = LEASE_SECONDS,
    client: MlflowClient | None = None,
) -> Iterator[Lease]:
    """Hold `model_name`'s promotion lease; `TimeoutError` when another holder keeps it."""
    client = client or MlflowClient()
    owner = Owner.current().text()
    lease = _acquire(client, lease_name(model_name), owner, timeout_seconds, lease_seconds)
    try:
        yield lease
    finally:
        _release(client, lease)


def check_lease(
    lease: Lease, *, margin_seconds: float = MOVE_MARGIN_SECONDS, client: MlflowClient | None = None
) -> None:
    """Raise `LeaseLost` unless `lease` is still the registry's and runs `margin_seconds` more."""
    held = _read(client or MlflowClient(), lease.name)
    if held is None or held.token != lease.token:
        other = "nobody" if held is None else _who(held.owner)
        raise LeaseLost(f"the promotion lease {lease.name!r} is held by {other} now")
    if lease.expires_at - time.time() < margin_seconds:
        raise LeaseLost(f"the promotion lease {lease.name!r} expires at {lease.until()}")


def _acquire(
    client: MlflowClient, name: str, owner: str, timeout_seconds: float, lease_seconds: float
) -> Lease:
    deadline = time.monotonic() + timeout_seconds
    while True:
        lease = Lease(name=name, token=uuid4().hex, owner=owner,
                      expires_at=time.time() + lease_seconds)  # fmt: skip
        try:
            client.create_registered_model(
                name,
                tags={_TOKEN: lease.token, _OWNER: owner, _EXPIRES: f"{lease.expires_at:.3f}"},
                description="churn-retrain's promotion lease: exists while a promotion, "
                "rollback or prune of the model runs; expires by itself.",
            )
            return lease
        except MlflowException as exc:
            if exc.error_code != _TAKEN:
                raise
        held = _read(client, name)
        if held is not None and (held.expires_at < time.time() or _gone(held.owner)):
            _take_over(client, held)
            continue
        if time.monotonic() >= deadline:
            holder = "its holder" if held is None else f"{_who(held.owner)} (until {held.until()})"
            raise TimeoutError(f"the promotion lease {name!r} stayed with {holder}")
        time.sleep(_POLL_SECONDS)


def _read(client: MlflowClient, name: str) -> Lease | None:
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise
    try:
        expires = float(tags.get(_EXPIRES, "0"))
    except ValueError:
        expires = 0.0  # unreadable: treated as expired, so it cannot block forever
    return Lease(name=name, token=tags.get(_TOKEN, ""), owner=tags.get(_OWNER, "?"),
                 expires_at=expires)  # fmt: skip


def _gone(owner: str) -> bool:
    holder = Owner.parse(owner)
    return holder is not None and holder.is_gone()


def _who(owner: str) -> str:
    holder = Owner.parse(owner)
    return owner if holder is None else holder.describe()


def _take_over(client: MlflowClient, stale: Lease) -> None:
    """Delete a stale lease, unless it changed hands since it was read."""
    again = _read(client, stale.name)
    if again is None or again.token != stale.token:
        return  # released, or another waiter took it first: try again
    why = "its process is gone" if _gone(stale.owner) else f"it expired at {stale.until()}"
    logger.warning(
        "Taking over the promotion lease %r of %s: %s", stale.name, _who(stale.owner), why
    )
    try:
        client.delete_registered_model(stale.name)
    except MlflowException as exc:
        if not is_missing(exc):
            raise


def _release(client: MlflowClient, lease: Lease) -> None:
    """Give the lease back if it is still ours; a failure leaves it to expire."""
    try:
        held = _read(client, lease.name)
        if held is None or held.token != lease.token:
            logger.error("The promotion lease %r was lost before it was released", lease.name)
            return
        client.delete_registered_model(lease.name)
    except Exception as exc:  # never mask what the holder raised: the lease expires anyway
        if not (isinstance(exc, MlflowException) and is_missing(exc)):
            logger.error(
                "Could not release the promotion lease %r (it expires at %s): %s",
                lease.name, lease.until(), exc,
            )  # fmt: skip
