"""A backfill: the real retrain flow over a range of past months, in order, one at a time.

Each month is a sub-run of `retrain` (validation, fair holdout, training, comparison, locked
promotion, report), so it decides exactly as the monthly run would. Months already decided are
skipped, so a stopped backfill resumes where it stopped. A rejected month stops it unless
`continue_on_rejection`; any other failure stops it. It ends with one table and the reign plots.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.parameters import BackfillParameters
from flows.retrain import retrain
from tasks.logs import keep_expected_failures_short
from tasks.months.backfill import BackfillMonth, find_decided_months, settle_month
from tasks.months.report import (
    BackfillReport,
    report_backfill,
    show_progress,
    stop_reason,
    stopped_error,
)
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking


# Named `retrain` like the monthly run, so its deployment is `retrain/backfill`.
@flow(name="retrain", flow_run_name="backfill-{params.start}-to-{params.end}", log_prints=True)
def backfill(params: BackfillParameters) -> BackfillReport:
    """Retrain every month from `from` to `to` in order; skip the months decided before."""
    keep_expected_failures_short()
    settings = Settings()
    target = params.model.resolve(settings)
    configure_tracking(settings, target)  # the store the months are decided in
    periods = params.months()
    skipped = find_decided_months(target.experiment_name, periods)
    progress = show_progress(periods, skipped)
    ran: list[BackfillMonth] = []
    stopped: BaseException | None = None
    for period in (p for p in periods if p not in skipped):
        state = retrain(params.month(period), return_state=True)  # a sub-run per month
        outcome = state.result(raise_on_failure=False)
        ran.append(settle_month(period, outcome))
        progress = show_progress(periods, skipped, ran, artifact=progress)
        if stop_reason(ran[-1], continue_on_rejection=params.continue_on_rejection):
            stopped = outcome if isinstance(outcome, BaseException) else None
            break
    report = report_backfill(periods, skipped, ran, target.model, params.rule, settings)
    get_run_logger().info("%s", report.text())
    if stopped is not None:  # the backfill fails with its month's own error (exit status)
        raise stopped_error(report, stopped)
    return report
