"""The model card: a version's decision in a few lines, from a small inline record."""

from __future__ import annotations

from typing import Any

from tasks.decision.approval import ApprovalOutcome
from tasks.decision.intervals import Interval, PairedIntervals
from tasks.decision.record import DecisionRecord, ModelScores
from tasks.decision.rule import DecisionRule
from tasks.decision.verdict import Decision, settle
from tasks.registry.history import HistoryEvent
from tasks.registry.promotion import Promotion
from tasks.report.card import CARD_TITLE, model_card, rollback_line, with_line

EVENT = HistoryEvent(
    seq=4,
    action="promote",
    from_version="2",
    to_version="3",
    by="scheduler",
    at="2026-05-01T02:00:03.000+00:00",
    decision_run="r123",
    reason="promote: beats the champion",
)


def _interval(estimate: float, half: float) -> Interval:
    return Interval(
        estimate=estimate,
        lower=estimate - half,
        upper=estimate + half,
        confidence=0.95,
        method="bootstrap",
    )


def _record(*, promoted: bool = True, **changes: Any) -> DecisionRecord:
    """A May decision: v3 against champion v2 on roc_auc, promoted unless told otherwise."""
    difference = _interval(0.0081, 0.004)
    decision = Decision(
        verdict="promote" if promoted else "tie",
        promote=promoted,
        promoted=promoted,
        reason="challenger roc_auc 0.8512 vs champion 0.8431, improvement +0.0081",
        metric="roc_auc",
        challenger_score=0.8512,
        champion_score=0.8431,
        improvement=0.0081,
        interval=difference,
        champion_after="3" if promoted else "2",
    )
    fields: dict[str, Any] = {
        "model_name": "telco-churn",
        "period": "2026-05",
        "data_source": "/data/2026-05.csv",
        "data_digest": "sha256:0123456789abcdef0123456789abcdef",
        "idempotency_key": "telco-churn:2026-05",
        "rows": 7043,
        "train_rows": 5634,
        "holdout_rows": 1409,
        "validation": "passed 66/66 expectations on 7,043 rows",
        "seed": 42,
        "rule": DecisionRule(),
        "challenger": ModelScores(version="3", algorithm="lr", holdout={"roc_auc": 0.8512}),
        "champion": ModelScores(version="2", holdout={"roc_auc": 0.8431}),
        "decision": decision,
        "intervals": PairedIntervals(
            challenger={"roc_auc": _interval(0.8512, 0.01)},
            champion={"roc_auc": _interval(0.8431, 0.011)},
            difference={"roc_auc": difference},
        ),
        "promotion": Promotion(
            promoted=True,
            conflict=False,
            champion_before="2",
            champion_after="3",
            reason="v3 is champion (was v2)",
            event=EVENT,
        )
        if promoted
        else None,
        "mlflow_run_id": "r123",
        "mlflow_run_url": "http://127.0.0.1:5000/#/experiments/1/runs/r123",
        "champion_url": None,
        "tracking_uri": "sqlite:////state/mlflow.db",
        "decided_at": "2026-05-01T02:00:00+00:00",
    }
    return DecisionRecord(**{**fields, **changes})


def test_a_promoted_card_says_month_data_rule_scores_verdict_and_what_it_replaced() -> None:
    card = model_card(_record())
    lines = card.splitlines()
    assert lines[0] == f"{CARD_TITLE}: telco-churn v3, 2026-05: **promote**"
    assert "**Month** 2026-05 (run [r123](http://127.0.0.1:5000/#/experiments/1/runs/r123)" in card
    assert (
        "**Data** `/data/2026-05.csv`: 7,043 rows, `sha256:0123456789abcdef0123456789abcdef`; "
        "trained on 5,634, compared on 1,409 holdout rows"
    ) in card
    assert f"**Rule** {DecisionRule().describe()}" in card
    assert (
        "holdout roc_auc: challenger 0.8512 [0.8412, 0.8612]; champion v2 0.8431 "
        "[0.8321, 0.8541]; difference +0.0081 [+0.0041, +0.0121] (95% bootstrap)"
    ) in card
    assert "**Verdict** promote: challenger roc_auc 0.8512 vs champion 0.8431" in card
    assert lines[-1] == (
        "- **Champion** v3 is champion: replaced v2 (moved by scheduler at "
        "2026-05-01T02:00:03.000+00:00, history #4)"
    )
    assert "Approval" not in card  # none was asked for
    assert len(lines) <= 10  # a few lines, not the report


def test_a_card_not_promoted_names_the_champion_that_stays() -> None:
    card = model_card(_record(promoted=False))
    assert "**tie**" in card.splitlines()[0]
    assert card.splitlines()[-1] == "- **Champion** not promoted; v2 stays champion"
    assert "replaced" not in card


def test_the_first_champion_replaced_nothing_and_a_metric_beside_roc_auc_shows_both() -> None:
    record = _record(
        champion=None,
        intervals=None,
        challenger=ModelScores(version="3", holdout={"roc_auc": 0.8512, "recall": 0.61}),
        promotion=None,
    )
    record = record.model_copy(
        update={"decision": record.decision.model_copy(update={"metric": "recall"})}
    )
    card = model_card(record)
    assert "- **Champion** v3 is champion: the first champion" in card
    assert "holdout recall: challenger 0.6100\n" in card  # no champion, no interval
    assert "holdout roc_auc: challenger 0.8512" in card


def test_an_approval_is_on_the_card() -> None:
    approval = ApprovalOutcome(
        status="approved",
        reviewer="dana",
        comment="lift holds in the segments",
        asked_at="2026-05-01T02:00:01+00:00",
        answered_at="2026-05-01T09:12:00+00:00",
        timeout_minutes=1440,
    )
    card = model_card(_record(approval=approval))
    assert (
        "- **Approval** approved by dana at 2026-05-01T09:12:00+00:00: lift holds in the segments"
    ) in card


def test_a_refused_promotion_is_carded_as_the_conflict_it_was() -> None:
    record = _record()
    refused = Promotion(
        promoted=False,
        conflict=True,
        champion_before="4",
        champion_after="4",
        reason="not promoted: the champion of 'telco-churn' is v4 now, not v2",
    )
    settled = record.model_copy(
        update={
            "decision": settle(record.decision, refused, champion_before="2"),
            "promotion": refused,
        }
    )
    card = model_card(settled)
    assert "**conflict**" in card.splitlines()[0]
    assert "- **Champion** not promoted; v4 stays champion" in card
    assert "**Verdict** conflict: not promoted: the champion of 'telco-churn' is v4 now" in card


def test_credentials_in_the_source_never_reach_the_card() -> None:
    record = _record(data_source="postgresql+psycopg://app:s3cret@db:5432/crm?token=abc")
    card = model_card(record)
    assert "`postgresql+psycopg://db:5432/crm`" in card
    for secret in ("s3cret", "app:", "app@", "token"):
        assert secret not in card


def test_a_rollback_appends_who_why_when_and_from_which_version() -> None:
    event = HistoryEvent(
        seq=5,
        action="rollback",
        from_version="3",
        to_version="2",
        by="dana",
        at="2026-05-03T10:00:00.000+00:00",
        reason="v3 mis-scores the new tariff",
    )
    line = rollback_line(event)
    assert line == (
        "- **Restored** as champion by rollback from v3, by dana at "
        "2026-05-03T10:00:00.000+00:00 (history #5): v3 mis-scores the new tariff"
    )
    card = model_card(_record(promoted=False))
    assert with_line(card, line) == f"{card}\n{line}"
    assert with_line(None, line) == line  # a version registered by hand has no card
    assert with_line("  \n", line) == line
