"""The gate report: failures grouped by column with counts, a self-contained page, no values."""

from __future__ import annotations

from pathlib import Path

from tasks.errors import SnapshotRejected
from tasks.gate.drift import ColumnDrift, DriftReport
from tasks.gate.failures import FailedCheck
from tasks.gate.report import (
    Gate,
    failures_by_column,
    rejection_failures,
    render_html,
    render_markdown,
)
from tasks.gate.suite import ValidationReport
from tasks.gate.thresholds import DriftThresholds

FAILURES = (
    FailedCheck(None, "expect_table_columns_to_match_set", "missing column Contract", None),
    FailedCheck("tenure", "expect_column_values_to_not_be_null", "3 null values", 3),
    FailedCheck("tenure", "expect_column_values_to_be_between", "2 values outside [0, 72]", 2),
    FailedCheck(
        "TotalCharges",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "9 rows (0.6%) with TotalCharges < MonthlyCharges where tenure > 0",
        9,
    ),
)


def _rejected_gate(tmp_path: Path) -> Gate:
    report = ValidationReport(source="/d/2026-02.csv", rows=1500, evaluated=66, failures=FAILURES)
    gate = Gate(period="2026-02", directory=tmp_path, flow_run="brave-owl", source=report.source)
    gate.reject(
        SnapshotRejected(f"Snapshot /d/2026-02.csv rejected: {report.summary()}", report=report)
    )
    return gate


def test_failures_group_by_column_with_summed_counts() -> None:
    table = {entry.column: entry for entry in failures_by_column(FAILURES)}
    assert list(table) == ["(table)", "tenure", "TotalCharges"]
    assert table["tenure"].checks == 2 and table["tenure"].rows == 5
    assert table["(table)"].rows is None
    assert table["tenure"].problems == ("3 null values", "2 values outside [0, 72]")


def test_a_parse_guard_rejection_becomes_one_table_check() -> None:
    [check] = rejection_failures(
        SnapshotRejected("Snapshot /d/x.csv: line 57 has 20 fields, the header has 21")
    )
    assert check.column is None and check.problem == "line 57 has 20 fields, the header has 21"


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    page = render_html(_rejected_gate(tmp_path))
    assert "REJECTED" in page and "brave-owl" in page
    assert "TotalCharges &lt; MonthlyCharges" in page  # escaped, not markup
    assert "<script" not in page and "http" not in page  # nothing loaded from elsewhere
    assert "<td>tenure</td><td>expect_column_values_to_not_be_null</td>" in page


def test_markdown_summarises_by_column(tmp_path: Path) -> None:
    text = render_markdown(_rejected_gate(tmp_path))
    assert text.startswith("## Snapshot 2026-02: REJECTED")
    assert "| tenure | 2 | 5 | 3 null values; 2 values outside [0, 72] |" in text
    assert "| (table) | 1 |  | missing column Contract |" in text


def test_drift_rejection_shows_psi_per_column(tmp_path: Path) -> None:
    drift = DriftReport(
        source="/d/x.csv",
        status="fail",
        champion_version="3",
        thresholds=DriftThresholds(),
        columns=[
            ColumnDrift(column="MonthlyCharges", kind="numeric", psi=1.2049, status="fail"),
            ColumnDrift(column="Contract", kind="categorical", psi=0.12, status="warn"),
            ColumnDrift(column="gender", kind="categorical", psi=0.001, status="ok"),
        ],
    )
    gate = Gate(period="2026-02", directory=tmp_path)
    gate.reject(SnapshotRejected("Snapshot /d/x.csv rejected: drift: ...", report=drift))
    assert [f.column for f in gate.failures] == ["MonthlyCharges"]
    page = render_html(gate)
    assert (
        "<tr class='fail'><td>MonthlyCharges</td><td>numeric</td><td class='n'>1.2049</td>" in page
    )
    assert "<tr class='warn'><td>Contract</td>" in page
    assert "<td>drift:psi</td><td>PSI 1.205 &gt;= fail threshold 0.25</td>" in page
