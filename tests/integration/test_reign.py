"""The champion's reign: its score at promotion and every later month, in `status` and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.decision.compare import Comparison
from tasks.decision.health import PromotionScore, assess_health
from tasks.decision.intervals import Interval, PairedIntervals
from tasks.decision.rule import DecisionRule
from tasks.decision.verdict import Decision
from tasks.registry.reign import Reign, ReignPoint, RunData, build_reign
from tasks.report.plots import reign_figure
from tasks.report.publish import REIGN_PLOT, REPORT_DIR, reign_month

PNG_HEADER = b"\x89PNG\r\n\x1a\n"
RULE_PARAMS = {"rule.floor": "0.75", "rule.health_tolerance": "0.02"}


def _promoting(estimate: float = 0.85, *, interval: bool = True) -> RunData:
    metrics = {"holdout_roc_auc": estimate, "holdout_brier": 0.14}
    if interval:
        metrics |= {
            "holdout_roc_auc_lower": estimate - 0.02,
            "holdout_roc_auc_upper": estimate + 0.02,
        }
    return RunData("run-p", 1, RULE_PARAMS, metrics, {"data.period": "2026-01"})


def _month(
    period: str, estimate: float | None, *, started: int, state: str = "healthy", **params: str
) -> RunData:
    metrics = {} if estimate is None else {"champion_holdout_roc_auc": estimate}
    if estimate is not None:
        metrics |= {"champion_holdout_roc_auc_lower": estimate - 0.03,
                    "champion_holdout_roc_auc_upper": estimate + 0.03}  # fmt: skip
    tags = {"data.period": period, "champion.health": state}
    return RunData(f"run-{period}-{started}", started, {**RULE_PARAMS, **params}, metrics, tags)


def _reign(*later: RunData, promoting: RunData | None = None) -> Reign:
    return build_reign(
        "telco-churn", "1", metric="roc_auc", promoting=promoting or _promoting(), later=later
    )


def test_months_are_ordered_by_period_and_a_rerun_month_keeps_its_latest_run() -> None:
    reign = _reign(
        _month("2026-04", 0.80, started=40, state="degraded", **{"rule.floor": "0.7"}),
        _month("2026-02", 0.84, started=20),
        _month("2026-03", 0.83, started=30),
        _month("2026-02", 0.845, started=35),  # February run again, after March
    )
    assert [p.period for p in reign.months] == ["2026-02", "2026-03", "2026-04"]
    assert [p.run_id for p in reign.months] == [
        "run-2026-02-35",
        "run-2026-03-30",
        "run-2026-04-40",
    ]
    assert reign.months[0].estimate == pytest.approx(0.845)
    assert reign.months[-1].state == "degraded"
    assert reign.at_promotion is not None and reign.at_promotion.period == "2026-01"
    assert (reign.at_promotion.lower, reign.at_promotion.upper) == pytest.approx((0.83, 0.87))
    # The rule in force is the newest run's, whatever the period order.
    assert (reign.floor, reign.tolerance) == (0.7, 0.02)


def test_a_champion_with_no_later_months_is_its_promotion_score_alone() -> None:
    reign = _reign()
    assert reign.months == [] and reign.has_scores
    assert (reign.floor, reign.tolerance) == (0.75, 0.02)  # from the promoting run's rule
    table = reign.table()
    assert len(table) == 3 and table[-1].split() == [
        "2026-01", "0.8500", "[0.8300,", "0.8700]", "at", "promotion",
    ]  # fmt: skip


def test_missing_intervals_and_unscored_months_are_gaps_not_errors() -> None:
    bare = RunData("run-x", 5, {}, {"champion_holdout_roc_auc": 0.81}, {"data.period": "2026-02"})
    unscored = _month("2026-03", None, started=6, state="")
    reign = _reign(bare, unscored, promoting=_promoting(interval=False))
    assert reign.at_promotion is not None and reign.at_promotion.lower is None
    february, march = reign.months
    assert (february.estimate, february.lower, february.upper, february.state) == (
        0.81, None, None, None,
    )  # fmt: skip
    assert march.estimate is None and march.score_text() == "-"
    assert february.interval_text() == "-"
    assert (reign.floor, reign.tolerance) == (0.75, 0.02)  # the newest run is March's
    nothing = build_reign("m", "2", metric="roc_auc", promoting=RunData("r"), later=[])
    assert nothing.at_promotion is None and not nothing.has_scores
    assert nothing.table() == ["reign: no roc_auc recorded at promotion or since"]
    assert nothing.floor is None


def test_this_months_point_comes_from_the_comparison_and_replaces_a_rerun() -> None:
    rule = DecisionRule()
    champion_now = Interval(estimate=0.82, lower=0.79, upper=0.85, confidence=0.95, method="b")
    comparison = Comparison(
        holdout_rows=300,
        challenger={"roc_auc": 0.83},
        champion={"roc_auc": 0.82},
        decision=Decision(verdict="tie", promote=False, reason="tie", metric="roc_auc",
                          challenger_score=0.83, champion_score=0.82, improvement=0.01),
        intervals=PairedIntervals(challenger={}, champion={"roc_auc": champion_now}, difference={}),
    )  # fmt: skip
    health = assess_health(
        champion_now, PromotionScore(period="2026-01", estimate=0.85), rule, version="1"
    )
    month = reign_month("run-now", "2026-03", comparison, "roc_auc", health)
    assert month == ReignPoint(period="2026-03", estimate=0.82, lower=0.79, upper=0.85,
                               state=health.state, run_id="run-now")  # fmt: skip
    earlier = _reign(_month("2026-02", 0.84, started=2), _month("2026-03", 0.8, started=3))
    reign = earlier.with_month(month)
    assert [(p.period, p.run_id) for p in reign.months] == [
        ("2026-02", "run-2026-02-2"), ("2026-03", "run-now"),
    ]  # fmt: skip
    unscored = Comparison(
        holdout_rows=0, challenger={}, champion=None, decision=comparison.decision
    )
    assert reign_month("r", "2026-04", unscored, "roc_auc", None).estimate is None


@pytest.mark.parametrize("months", [0, 1, 40], ids=["promotion only", "one month", "40 months"])
def test_the_plot_is_a_png_for_a_reign_of_any_length(tmp_path: Path, months: int) -> None:
    later = [
        _month(f"{2026 + (i + 1) // 12}-{(i + 1) % 12 + 1:02d}", 0.85 - i / 400, started=i)
        for i in range(months)
    ]
    path = reign_figure(_reign(*later), tmp_path / "plots" / "reign.png")
    data = path.read_bytes()
    assert data.startswith(PNG_HEADER) and len(data) > 1000


# --- through the flow on the session's Prefect server, then `status` -------------------------

FAST = {"data": "generated", "models": ["lr"], "folds": 2, "generated_rows": 1500, "seed": 3}
#: A margin no challenger clears: the champion stays every month.
KEEP = {"min_improvement": 0.5}


@pytest.mark.usefixtures("prefect_server")
def test_three_months_of_one_champion_show_in_status_and_the_report(
    state_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from cli.main import main
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    first = retrain(RetrainParameters(period="2026-01", **FAST))
    assert first.champion_version_after == "1"
    assert f"{REPORT_DIR}/{REIGN_PLOT}" not in first.report_artifacts  # no champion to plot
    later = [
        retrain(RetrainParameters(period=period, rule=KEEP, **FAST))
        for period in ("2026-02", "2026-03")
    ]
    assert [r.champion_version_after for r in later] == ["1", "1"], [r.reason for r in later]

    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    reign = status["reign"]
    assert reign["version"] == "1" and reign["metric"] == "roc_auc"
    assert reign["at_promotion"]["period"] == "2026-01"
    assert reign["at_promotion"]["run_id"] == first.mlflow_run_id
    assert [m["period"] for m in reign["months"]] == ["2026-02", "2026-03"]
    assert [m["run_id"] for m in reign["months"]] == [r.mlflow_run_id for r in later]
    for month, record in zip(reign["months"], later, strict=True):
        assert record.champion is not None and record.champion_health is not None
        assert month["estimate"] == pytest.approx(record.champion.holdout["roc_auc"])
        assert month["lower"] < month["estimate"] < month["upper"]
        assert month["state"] == record.champion_health.state
    assert reign["floor"] == 0.75 and reign["tolerance"] == 0.02

    plot = Path(status["reign_plot"])
    assert plot == state_home / "reports" / "reign-telco-churn-v1.png"
    data = plot.read_bytes()
    assert data.startswith(PNG_HEADER) and len(data) > 1000

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "reign of v1 (roc_auc on rows it never saw)" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("2026-0")]
    assert [row[0] for row in rows] == ["2026-01", "2026-02", "2026-03"], text
    assert f"reign plot: {plot}" in text

    # Each later run's report has the reign, its own month included.
    march = later[-1]
    assert f"{REPORT_DIR}/{REIGN_PLOT}" in march.report_artifacts
    client = MlflowClient()
    listed = {a.path: a.file_size for a in client.list_artifacts(march.mlflow_run_id, REPORT_DIR)}
    assert (listed.get(f"{REPORT_DIR}/{REIGN_PLOT}") or 0) > 1000, listed


def test_read_reign_keeps_to_the_model_and_the_version(state_home: Path) -> None:
    from mlflow.tracking import MlflowClient

    from tasks.registry.reign import read_reign
    from tasks.settings import Settings
    from tasks.tracking.runs import configure_tracking

    tracking = configure_tracking.fn(Settings())
    client = MlflowClient()

    def run(model: str, period: str, metrics: dict[str, float], tags: dict[str, str]) -> str:
        created = client.create_run(tracking.experiment_id, tags={"data.period": period, **tags})
        run_id = created.info.run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        if not client.search_registered_models(f"name='{model}'"):
            client.create_registered_model(model)
        client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
        return run_id

    promoting = run("telco-churn", "2026-01", {"holdout_roc_auc": 0.85}, {})
    before_v1 = {"decision.champion_version_before": "1", "champion.health": "healthy"}
    ours = run("telco-churn", "2026-02", {"champion_holdout_roc_auc": 0.84}, before_v1)
    run("other-model", "2026-02", {"champion_holdout_roc_auc": 0.5}, before_v1)  # its own v1
    later_v2 = {**before_v1, "decision.champion_version_before": "2"}
    run("telco-churn", "2026-03", {"champion_holdout_roc_auc": 0.7}, later_v2)

    reign = read_reign("telco-churn", "1")
    assert reign.at_promotion is not None and reign.at_promotion.run_id == promoting
    assert [(m.period, m.run_id, m.estimate, m.state) for m in reign.months] == [
        ("2026-02", ours, 0.84, "healthy")
    ]
