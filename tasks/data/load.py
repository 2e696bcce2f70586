"""Load the month: from a file, a URL, object storage or a database, or generated on request.

Whatever the source (tasks/data/source.py finds it), one `Snapshot` comes out: the 21 columns
typed as a CSV read types them, rows in customer order (so the same rows give the same digest
and the same decision, whether they came as CSV, CSV.gz, Parquet or a query), the location named
without credentials. The download deadline bounds the whole load, its retries included.
"""

from __future__ import annotations

from tasks.data.configured import find_configured_source
from tasks.data.request import DEFAULT_MAX_BYTES, GENERATED, SnapshotRequest
from tasks.data.snapshot import Snapshot
from tasks.data.source import ReadLimits, locate, source_for
from tasks.errors import DataSourceMisconfigured, SnapshotUnavailable
from tasks.runtime.deadline import Deadline
from tasks.settings import Settings
from tasks.steps import retried_step

#: Seconds between attempts of a load that failed for a transient reason.
RETRY_DELAY_SECONDS = 5.0
NO_DATA = (
    "no data source configured: give `data` (a path, URL, s3://… location or database URL), "
    "or set the Prefect Variable `churn-retrain-data` (make deploy DATA=…); "
    f'`data: "{GENERATED}"` retrains on generated rows'
)


@retried_step("load-snapshot", delay_seconds=RETRY_DELAY_SECONDS)
def load_snapshot(
    request: SnapshotRequest,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_seconds: float | None = None,
) -> Snapshot:
    """Read the month's rows from its source, or generate them when asked to.

    The whole load, retries included, ends within `deadline_seconds` (default: the
    `download_timeout_seconds` setting): a 5xx answer, a timeout or an unreachable server
    (`SnapshotUnavailable`) is retried while the deadline leaves time for another attempt; a
    4xx, a missing file or refused credentials (`SnapshotRejected`) is not.
    """
    source, options = request.source, request.options
    if source is None:  # a deployment's run: the location configured on the Prefect server
        configured = find_configured_source()
        if configured is None:
            raise DataSourceMisconfigured(NO_DATA)
        source, options = configured
    location = locate(request, source, options)
    deadline = Deadline.for_this_task(deadline_seconds or Settings().download_timeout_seconds)
    limits = ReadLimits(deadline, max_bytes, categories=request.categories)
    try:
        frame = source_for(location).read(location, limits)
    except SnapshotUnavailable as exc:
        if deadline.remaining() <= _retry_delay():
            raise exc.final() from None  # no time for another attempt: not retried
        raise
    return Snapshot.of(
        frame,
        source=location.shown,
        period=request.period,
        in_customer_order=request.in_customer_order and location.scheme != GENERATED,
    )


def _retry_delay() -> float:
    """Seconds the running task waits before its next attempt."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    delay = context.task.retry_delay_seconds if context is not None else RETRY_DELAY_SECONDS
    first = delay[0] if isinstance(delay, list) else delay
    return float(first or 0.0)
