"""The promotion lock: a one-slot Prefect global concurrency limit per model, and the registry
lease under it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tasks.errors import PromotionLockMissing
from tasks.registry.lease import Lease, registry_lease
from tasks.steps import retried_step

#: Seconds to wait for the promotion lock before giving up (the verdict becomes `conflict`).
LOCK_TIMEOUT_SECONDS = 120.0
#: A holder that died releases the lock when its lease runs out (renewed while alive).
LOCK_LEASE_SECONDS = 60.0


def promotion_lock_name(model_name: str) -> str:
    """The Prefect global concurrency limit serialising alias moves of `model_name`."""
    return "churn-retrain-promote-" + re.sub(r"[^A-Za-z0-9_.-]", "-", model_name)


@retried_step("ensure-promotion-lock")
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
) -> Iterator[Lease]:
    """Hold the model's promotion lock; a missing limit raises instead of being skipped.

    Two locks, each for the runs the other cannot see: the Prefect limit queues the runs of one
    Prefect server (deployments), the registry lease (`tasks.registry.lease`) every client of one
    registry, whichever Prefect server each uses (two `churn-retrain run` processes, each with
    its own temporary server; machines sharing a remote MLflow server). `TimeoutError` when
    either stays busy for `timeout_seconds`.
    """
    from prefect.concurrency.sync import concurrency

    started = time.monotonic()
    with concurrency(
        promotion_lock_name(model_name),
        occupy=1,
        strict=True,
        timeout_seconds=timeout_seconds,
        lease_duration=LOCK_LEASE_SECONDS,
    ):
        remaining = max(1.0, timeout_seconds - (time.monotonic() - started))
        with registry_lease(model_name, timeout_seconds=remaining) as lease:
            yield lease
