"""Registry housekeeping: delete versions never promoted and older than N months."""

from __future__ import annotations

from prefect import flow

from flows.parameters import PruneParameters
from tasks.alerts.hook import alert_on_failure
from tasks.logs import keep_expected_failures_short
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.prune import PruneResult, delete_unpromoted_versions, plan_prune
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking


# An unattended prune that fails alerts like a retrain; the hook never raises.
@flow(name="prune", log_prints=True, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def prune(params: PruneParameters | None = None) -> PruneResult:
    """Plan which versions to delete, then (unless a dry run) delete them under the promotion
    lock, each re-checked right before its delete."""
    from prefect.artifacts import create_markdown_artifact

    keep_expected_failures_short()  # a busy lock is logged as its message
    params = params or PruneParameters()
    settings = Settings()
    tracking = configure_tracking(settings, params.model.resolve(settings))
    if not params.dry_run:  # a dry run only reads: it needs no lock
        ensure_promotion_lock(tracking.model_name, create=params.create_promotion_lock)
    result = plan_prune(tracking.model_name, older_than_months=params.older_than_months)
    if not params.dry_run:
        result = delete_unpromoted_versions(result)
    print(result.headline())
    create_markdown_artifact(
        key="prune", markdown=result.markdown(), description="Registry housekeeping"
    )
    return result
