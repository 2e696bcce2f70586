"""What a backfill shows: progress as it goes (the log and a Prefect progress artifact), then
one table of the range and the reign plots, written under the state directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from tasks.decision.rule import FITNESS_METRIC
from tasks.errors import ChurnRetrainError
from tasks.months.backfill import (
    BackfillMonth,
    closing_months,
    progress_line,
    table_markdown,
    table_text,
    write_backfill,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tasks.decision.rule import DecisionRule
    from tasks.settings import Settings


class BackfillReport(BaseModel):
    """The range's months in order, and where the table and the plots were written."""

    model_config = ConfigDict(frozen=True)

    months: list[BackfillMonth]
    table: str
    plots: list[str]

    def text(self) -> str:
        counts = {
            status: sum(m.status == status for m in self.months)
            for status in ("decided", "skipped", "rejected", "failed", "not-run")
        }
        said = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        lines = [f"backfill {self.months[0].period}..{self.months[-1].period}: {said}", ""]
        lines += [table_text(self.months), "", f"  table        {self.table}"]
        lines += [f"  reign plot   {plot}" for plot in self.plots]
        if rejected := [m.period for m in self.months if m.status == "rejected"]:
            lines.append(f"  rejected     {', '.join(rejected)} (not trained; champion untouched)")
        return "\n".join(lines)

    @property
    def stopped_at(self) -> BackfillMonth | None:
        """The month that stopped the backfill, when one did (months after it were not run)."""
        ran = [m for m in self.months if m.status != "not-run"]
        return ran[-1] if ran and any(m.status == "not-run" for m in self.months) else None


def stop_reason(month: BackfillMonth, *, continue_on_rejection: bool) -> bool:
    """Whether this month stops the backfill: a failure always, a rejection by default."""
    return month.status == "failed" or (month.status == "rejected" and not continue_on_rejection)


def show_progress(
    periods: list[str],
    skipped: Mapping[str, BackfillMonth],
    ran: list[BackfillMonth] | None = None,
    *,
    artifact: UUID | None = None,
) -> UUID | None:
    """Log the progress line and create (or move) the run's progress artifact; returns its id.

    Progress is bookkeeping: a Prefect API hiccup here is logged, never fatal.
    """
    from prefect import get_run_logger
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    ran = ran or []
    done = len(skipped) + len(ran)
    log = get_run_logger()
    if ran:
        log.info("%s", progress_line(done, len(periods), ran[-1]))
    elif skipped:
        log.info("%d of %d months decided before: skipped", len(skipped), len(periods))
    percent = 100.0 * done / len(periods)
    try:
        if artifact is None:
            found = create_progress_artifact(
                percent, key="backfill-progress", description="Months of the backfill done"
            )
            return found if isinstance(found, UUID) else None
        update_progress_artifact(artifact, percent)
    except Exception as exc:
        log.warning("progress artifact not updated: %s", exc)
    return artifact


def report_backfill(
    periods: list[str],
    skipped: Mapping[str, BackfillMonth],
    ran: list[BackfillMonth],
    model_name: str,
    rule: DecisionRule,
    settings: Settings,
) -> BackfillReport:
    """The closing table (JSON under the state dir, a Prefect markdown artifact) and the
    reign plot of every version that was champion in the range."""
    from prefect.artifacts import create_markdown_artifact

    months = closing_months(periods, skipped, ran)
    directory = settings.reports_dir / "backfills"
    stem = f"{model_name}-{periods[0]}-to-{periods[-1]}"
    table = write_backfill(months, directory, stem)
    champions = [m.champion for m in months if m.champion]
    plots = [str(p) for p in plot_reigns(model_name, champions, rule, directory)]
    create_markdown_artifact(
        markdown=f"# Backfill {periods[0]}..{periods[-1]}\n\n{table_markdown(months)}\n",
        key="backfill",
        description=f"{model_name}: one row per month",
    )
    return BackfillReport(months=months, table=str(table), plots=plots)


def stopped_error(report: BackfillReport, cause: BaseException) -> BaseException:
    """The month's own failure, saying the backfill stopped there and how to resume."""
    month = report.stopped_at
    if month is None or not isinstance(cause, ChurnRetrainError):
        return cause
    later = [m.period for m in report.months if m.status == "not-run"]
    message = (
        f"backfill stopped at {month.period} ({month.status}; {len(later)} later months not "
        f"run: {later[0]}..{later[-1]}): {cause}. Run the same backfill again once it is "
        "fixed: the months decided so far are skipped"
        + (" (or --continue-on-rejection to go past it)" if month.status == "rejected" else "")
    )
    try:
        error = type(cause)(message)
    except TypeError:  # a failure that needs more than its message: keep it as it is
        return cause
    error.exit_code = cause.exit_code
    return error


def plot_reigns(
    model_name: str, versions: list[str], rule: DecisionRule, out_dir: Path
) -> list[Path]:
    """The reign of each version that was champion (its roc_auc month by month against the
    floor and the tolerance): how long each served and how it decayed."""
    from tasks.registry.reign import read_reign
    from tasks.report.plots import reign_figure

    plots = []
    for version in dict.fromkeys(versions):
        reign = read_reign(model_name, version, metric=FITNESS_METRIC).model_copy(
            update={"floor": rule.floor, "tolerance": rule.health_tolerance}
        )
        if reign.has_scores:
            plots.append(reign_figure(reign, out_dir / reign.plot_name()))
    return plots
