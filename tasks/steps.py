"""How a function becomes a Prefect task (retried only when repeating it is safe), and stage times.

`step` is never retried: it creates something (an MLflow run, a logged model) or its failure
says something about the data. `retried_step` is for idempotent reads and guarded writes, and
retries only on transient errors (network, storage), never on a named rejection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.errors import is_transient


def step(name: str) -> Callable[[Callable[..., Any]], Any]:
    """A task run once: no retries, no result cache."""
    return task(name=name, cache_policy=NO_CACHE)


def retried_step(
    name: str, *, retries: int = 2, delay_seconds: float = 3
) -> Callable[[Callable[..., Any]], Any]:
    """A task safe to repeat: retried `retries` times on transient errors only."""
    return task(
        name=name,
        retries=retries,
        retry_delay_seconds=delay_seconds,
        retry_condition_fn=is_transient,
        cache_policy=NO_CACHE,
    )


def on_cluster() -> bool:
    """Whether the running flow submits its tasks to a cluster (prefect-dask's DaskTaskRunner),
    not to this process's threads; False outside a flow."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    return runner is not None and not isinstance(runner, ThreadPoolTaskRunner)


class StageClock:
    """Wall time per stage, for the decision record and the benchmarks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - started, 3)
