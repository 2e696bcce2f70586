"""The backfill's pure parts: the range, the months it skips, how a month settles, when it
stops, and the table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.parameters import BackfillParameters
from tasks.errors import EXIT_REJECTED, SnapshotRejected, TrainingFailed
from tasks.months.backfill import (
    BackfillMonth,
    closing_months,
    month_from_run,
    month_range,
    progress_line,
    settle_month,
    table_text,
)
from tasks.months.report import BackfillReport, stop_reason, stopped_error


@given(st.integers(2000, 2090), st.integers(1, 12), st.integers(0, 119))
def test_a_range_has_every_month_once_in_order(year: int, month: int, span: int) -> None:
    start = f"{year:04d}-{month:02d}"
    end_index = (year * 12 + month - 1) + span
    end = f"{end_index // 12:04d}-{end_index % 12 + 1:02d}"
    months = month_range(start, end)
    assert len(months) == span + 1 and months[0] == start and months[-1] == end
    assert months == sorted(set(months))


def test_a_range_backwards_or_over_ten_years_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ends \(2026-01\) before it starts \(2026-03\)"):
        month_range("2026-03", "2026-01")
    with pytest.raises(ValueError, match="over 120 months: split the backfill"):
        month_range("2000-01", "2010-01")


def test_the_parameters_give_each_month_the_retrains_options() -> None:
    params = BackfillParameters.model_validate(
        {"from": "2025-11", "to": "2026-02", "models": ["lr"], "folds": 2, "seed": 7}
    )
    assert params.months() == ["2025-11", "2025-12", "2026-01", "2026-02"]
    month = params.month("2026-01")
    assert (month.period, month.models, month.folds, month.seed) == ("2026-01", ["lr"], 2, 7)
    assert "period" not in BackfillParameters.model_json_schema()["properties"]
    with pytest.raises(ValueError, match="before it starts"):
        BackfillParameters.model_validate({"from": "2026-02", "to": "2025-02"})


def _tags(period: str, **extra: str) -> dict[str, str]:
    return {
        "data.period": period,
        "decision.verdict": "promote",
        "decision.metric": "roc_auc",
        "decision.challenger_version": "3",
        "decision.champion_version_after": "3",
        "champion.health": "healthy",
        **extra,
    }


def test_the_score_is_the_champion_afters_own() -> None:
    metrics = {"holdout_roc_auc": 0.81, "champion_holdout_roc_auc": 0.77}
    promoted = month_from_run(_tags("2026-01"), metrics, run_id="r1")
    kept = month_from_run(
        _tags("2026-02", **{"decision.champion_version_after": "2", "decision.verdict": "tie"}),
        metrics,
        run_id="r2",
    )
    assert (promoted.champion, promoted.score, promoted.status) == ("3", 0.81, "skipped")
    assert (kept.champion, kept.score) == ("2", 0.77)
    assert promoted.note == "decided before by run r1"


def test_a_month_settles_by_what_its_run_ended_with() -> None:
    rejected = settle_month("2026-03", SnapshotRejected("Snapshot x: column tenure missing"))
    failed = settle_month("2026-03", TrainingFailed("no model trained"))
    assert (rejected.status, rejected.note) == ("rejected", "Snapshot x: column tenure missing")
    assert failed.status == "failed"
    assert stop_reason(rejected, continue_on_rejection=False)
    assert not stop_reason(rejected, continue_on_rejection=True)
    assert stop_reason(failed, continue_on_rejection=True)


def test_a_stopped_backfill_fails_with_its_months_error_and_says_how_to_resume() -> None:
    periods = ["2026-01", "2026-02", "2026-03", "2026-04"]
    skipped = {"2026-01": month_from_run(_tags("2026-01"), {}, run_id="r1")}
    ran = [BackfillMonth(period="2026-02", status="rejected", note="bad")]
    months = closing_months(periods, skipped, ran)
    assert [m.status for m in months] == ["skipped", "rejected", "not-run", "not-run"]
    report = BackfillReport(months=months, table="t.json", plots=[])
    error = stopped_error(report, SnapshotRejected("Snapshot x: column tenure missing"))
    assert isinstance(error, SnapshotRejected) and error.exit_code == EXIT_REJECTED
    assert str(error).startswith(
        "backfill stopped at 2026-02 (rejected; 2 later months not run: 2026-03..2026-04): "
        "Snapshot x: column tenure missing. Run the same backfill again"
    )
    assert "--continue-on-rejection" in str(error)
    assert "1 skipped, 1 rejected, 2 not-run" in report.text()


def test_progress_and_table() -> None:
    month = month_from_run(_tags("2026-03"), {"holdout_roc_auc": 0.8}, run_id="r")
    assert progress_line(3, 12, month, width=12) == (
        "[###.........] 3/12 months  2026-03 skipped: promote (champion v3)"
    )
    lines = table_text([month, BackfillMonth(period="2026-04", status="not-run")]).splitlines()
    assert lines[0].split() == ["month", "status", "verdict", "champion", "score", "health"]
    assert lines[1].split() == [
        "2026-03",
        "skipped",
        "promote",
        "v3",
        "roc_auc",
        "0.8000",
        "healthy",
    ]
    assert lines[2].split() == ["2026-04", "not-run", "-", "-", "-", "-"]
