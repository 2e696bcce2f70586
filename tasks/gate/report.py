"""The data gate's report: a self-contained HTML page, a JSON twin and a Prefect markdown artifact.

Written for every run that reaches the gate, passed or rejected, under
`<home>/reports/<flow run id>/` (the alert links to it; a passing run also logs it to MLflow).
GX Data Docs would load CSS and JS from CDNs and render unstyled offline, so the page is built
here from the same counts the gate messages use: no raw customer values.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tasks.errors import SnapshotRejected
from tasks.gate.drift import DriftReport
from tasks.gate.failures import TABLE_KEY, FailedCheck
from tasks.gate.suite import ValidationReport
from tasks.settings import Settings
from tasks.steps import retried_step, step

REPORT_HTML = "validation.html"
REPORT_JSON = "validation.json"
ARTIFACT_KEY = "snapshot-validation"

logger = logging.getLogger(__name__)

R = TypeVar("R", ValidationReport, DriftReport)


class _HasFailures(Protocol):
    @property
    def failures(self) -> tuple[FailedCheck, ...]: ...


@dataclass(frozen=True)
class ColumnFailures:
    """Failed checks of one column (or "(table)"), with the rows they affect where known."""

    column: str
    checks: int
    rows: int | None
    problems: tuple[str, ...]


def failures_by_column(failures: tuple[FailedCheck, ...]) -> list[ColumnFailures]:
    """Group failed checks by column in first-seen order; row counts summed where known."""
    groups: dict[str, list[FailedCheck]] = {}
    for failure in failures:
        groups.setdefault(failure.column or TABLE_KEY, []).append(failure)
    table = []
    for column, checks in groups.items():
        counts = [c.unexpected_count for c in checks if c.unexpected_count is not None]
        table.append(
            ColumnFailures(
                column=column,
                checks=len(checks),
                rows=sum(counts) if counts else None,
                problems=tuple(dict.fromkeys(c.problem for c in checks)),
            )
        )
    return table


def rejection_failures(error: SnapshotRejected) -> tuple[FailedCheck, ...]:
    """The failed checks behind a rejection; a parse guard's message becomes one table check."""
    report: _HasFailures | None = error.report  # type: ignore[assignment]
    if report is not None and report.failures:
        return tuple(report.failures)
    message = str(error)
    # "Snapshot <file>: <problem>": the file is shown elsewhere, keep the problem.
    problem = message.split(": ", 1)[1] if message.startswith("Snapshot ") else message
    return (FailedCheck(None, "guard:parse", problem, None),)


@dataclass
class Gate:
    """What the gate found in one run; filled in as the checks pass, published at the end."""

    period: str
    directory: Path
    flow_run: str | None = None
    source: str | None = None
    rows: int | None = None
    validation: ValidationReport | None = None
    drift: DriftReport | None = None
    rejection: str | None = None
    failures: tuple[FailedCheck, ...] = ()
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def html_path(self) -> Path:
        return self.directory / REPORT_HTML

    @property
    def passed(self) -> bool:
        return self.rejection is None

    def record(self, report: R) -> R:
        """Keep a passing report (returned unchanged, so the flow reads `x = gate.record(...)`)."""
        if isinstance(report, ValidationReport):
            self.validation = report
            self.rows = report.rows
        else:
            self.drift = report
        return report

    def reject(self, error: SnapshotRejected) -> None:
        self.rejection = str(error)
        self.failures = rejection_failures(error)
        report = error.report
        if isinstance(report, ValidationReport):
            self.validation, self.rows = report, report.rows
        elif isinstance(report, DriftReport):
            self.drift = report

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "flow_run": self.flow_run,
            "source": self.source,
            "rows": self.rows,
            "passed": self.passed,
            "rejection": self.rejection,
            "failures_by_column": [c.__dict__ for c in failures_by_column(self.failures)],
            "validation": self.validation.to_dict() if self.validation else None,
            "drift": self.drift.to_dict() if self.drift else None,
            "created_at": self.created_at,
        }


def report_directory(settings: Settings, flow_run_id: str | None) -> Path:
    """Where a run's gate report goes; the alert hook finds it by the flow run id."""
    name = flow_run_id or datetime.now(UTC).strftime("local-%Y%m%dT%H%M%S%fZ")
    return settings.reports_dir / name


@contextmanager
def reporting_gate(settings: Settings, period: str) -> Iterator[Gate]:
    """Collect the gate's reports in the block; publish them whether the data passed or not."""
    from prefect import runtime

    flow_run_id = runtime.flow_run.id
    gate = Gate(
        period=period,
        directory=report_directory(settings, flow_run_id),
        flow_run=runtime.flow_run.name,
    )
    try:
        yield gate
    except SnapshotRejected as error:
        gate.reject(error)
        try:
            publish_gate_report(gate)
        except Exception as exc:  # the rejection matters more than its report
            logger.error("could not write the gate report: %s", type(exc).__name__)
        raise
    publish_gate_report(gate)


def render_markdown(gate: Gate) -> str:
    """The Prefect artifact: verdict, then failures by column with counts."""
    verdict = "passed" if gate.passed else "REJECTED"
    lines = [f"## Snapshot {gate.period}: {verdict}", ""]
    if gate.source:
        rows = f", {gate.rows:,} rows" if gate.rows is not None else ""
        lines += [f"Source `{gate.source}`{rows}.", ""]
    if gate.failures:
        lines += [
            "| column | failed checks | rows affected | problems |",
            "|---|---|---|---|",
        ]
        for entry in failures_by_column(gate.failures):
            rows = "" if entry.rows is None else f"{entry.rows:,}"
            problems = "; ".join(entry.problems).replace("|", "\\|")
            lines.append(f"| {entry.column} | {entry.checks} | {rows} | {problems} |")
        lines.append("")
    if gate.validation is not None:
        lines.append(f"Validation: {gate.validation.summary().splitlines()[0]}.")
    if gate.drift is not None:
        lines.append(f"Drift: {gate.drift.summary().splitlines()[0]}.")
    lines += ["", f"Report: `{gate.html_path}`"]
    return "\n".join(lines)


def render_html(gate: Gate) -> str:
    """A self-contained page (inline CSS, no scripts, no external links)."""
    e = html.escape
    verdict = "passed" if gate.passed else "rejected"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Snapshot {e(gate.period)}: {verdict}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Snapshot {e(gate.period)} <span class='{verdict}'>{verdict.upper()}</span></h1>",
        "<table class='meta'>",
        *(
            f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>"
            for k, v in (
                ("period", gate.period),
                ("source", gate.source or "(not read)"),
                ("rows", f"{gate.rows:,}" if gate.rows is not None else "n/a"),
                ("flow run", gate.flow_run or "n/a"),
                ("written", gate.created_at),
            )
        ),
        "</table>",
    ]
    if gate.rejection:
        parts.append(f"<h2>Why it was rejected</h2><pre>{e(gate.rejection)}</pre>")
    if gate.failures:
        parts += [
            "<h2>Failed checks by column</h2><table><tr><th>column</th><th>check</th>"
            "<th>problem</th><th>rows affected</th></tr>",
            *(
                f"<tr><td>{e(f.column or TABLE_KEY)}</td><td>{e(f.expectation)}</td>"
                f"<td>{e(f.problem)}</td><td class='n'>"
                f"{'' if f.unexpected_count is None else f'{f.unexpected_count:,}'}</td></tr>"
                for f in gate.failures
            ),
            "</table>",
        ]
    if gate.validation is not None:
        parts.append(f"<h2>Expectation suite</h2><pre>{e(gate.validation.summary())}</pre>")
    if gate.drift is not None:
        parts.append(f"<h2>Drift</h2><p>{e(gate.drift.summary().splitlines()[0])}</p>")
        if gate.drift.columns:
            parts.append("<table><tr><th>column</th><th>kind</th><th>PSI</th><th>status</th></tr>")
            for c in sorted(gate.drift.columns, key=lambda c: -c.psi):
                parts.append(
                    f"<tr class='{c.status}'><td>{e(c.column)}</td><td>{c.kind}</td>"
                    f"<td class='n'>{c.psi:.4f}</td><td>{c.status}</td></tr>"
                )
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "td.n{text-align:right}.meta th{background:#f4f4f4}"
    "pre{background:#f8f8f8;padding:1em;white-space:pre-wrap}"
    ".passed{color:#1a7f37}.rejected{color:#cf222e}"
    "tr.fail td{background:#ffebe9}tr.warn td{background:#fff8c5}"
)


@step("publish-gate-report")
def publish_gate_report(gate: Gate) -> Path:
    """Write the HTML and JSON report under the state directory and a Prefect markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    gate.directory.mkdir(parents=True, exist_ok=True)
    gate.html_path.write_text(render_html(gate), encoding="utf-8")
    (gate.directory / REPORT_JSON).write_text(
        json.dumps(gate.to_dict(), indent=1), encoding="utf-8"
    )
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=render_markdown(gate),
        description=f"Snapshot validation for {gate.period}",
    )
    return gate.html_path


@retried_step("log-gate-report")
def log_gate_report(run_id: str, gate: Gate) -> None:
    """Attach the gate report and the drift figures to the MLflow run of a passing snapshot."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    tags = [RunTag("gate.report", str(gate.html_path))]
    metrics = []
    if gate.drift is not None:
        tags.append(RunTag("drift.status", gate.drift.status))
        metrics = [Metric(f"drift_psi.{c.column}", c.psi, 0, 0) for c in gate.drift.columns]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    for name in (REPORT_HTML, REPORT_JSON):
        if (gate.directory / name).is_file():
            client.log_artifact(run_id, str(gate.directory / name), artifact_path="gate")
