"""Champion health: decay alerts a person, a champion below the floor fails the run, the rule decides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.decision.health import PromotionScore, assess_health
from tasks.decision.intervals import Interval
from tasks.decision.rule import DecisionRule
from tests.alert_receivers import AlertReceiver, receiver

RULE = DecisionRule()


def _now(estimate: float, half: float = 0.01) -> Interval:
    return Interval(estimate=estimate, lower=estimate - half, upper=estimate + half,
                    confidence=0.95, method="bootstrap")  # fmt: skip


def _then(estimate: float, half: float = 0.01) -> PromotionScore:
    return PromotionScore(period="2026-01", estimate=estimate, lower=estimate - half,
                          upper=estimate + half)  # fmt: skip


def test_the_rule_decides_the_state() -> None:
    assert assess_health(_now(0.84), _then(0.85), RULE, version="3").state == "healthy"
    # A drop of 0.05 whose interval (half-width ~0.014) stays beyond the 0.02 tolerance.
    degraded = assess_health(_now(0.80), _then(0.85), RULE, version="3")
    assert degraded.state == "degraded" and degraded.needs_a_person
    assert degraded.change is not None and degraded.change.upper < -0.02
    assert "v3 roc_auc 0.8000 now vs 0.8500 at promotion (2026-01)" in degraded.text()
    # The same drop measured too loosely is not yet decay.
    assert assess_health(_now(0.80, 0.04), _then(0.85, 0.04), RULE, version="3").state == "healthy"
    assert assess_health(_now(0.70), _then(0.85), RULE, version="3").state == "below-floor"
    assert assess_health(_now(0.84), None, RULE, version="3").state == "unknown"
    strict = RULE.model_copy(update={"health_tolerance": 0.0})
    assert (
        assess_health(0.84, PromotionScore(period=None, estimate=0.85), strict, version="3").state
        == "degraded"
    )


@given(
    now=st.floats(0, 1), then=st.floats(0, 1), half=st.floats(0, 0.2),
    tolerance=st.floats(0, 0.5), floor=st.floats(0, 1),
)  # fmt: skip
def test_any_scores_give_one_state_consistent_with_the_rule(
    now: float, then: float, half: float, tolerance: float, floor: float
) -> None:
    rule = DecisionRule(floor=floor, health_tolerance=tolerance, leakage_ceiling=None)
    health = assess_health(_now(now, half), _then(then, half), rule, version="1")
    assert (health.state == "below-floor") == (now < floor)
    assert health.change is not None and health.change.lower <= now - then <= health.change.upper
    if health.state == "degraded":
        assert health.change.upper < -tolerance


# --- through the flow, on the session's Prefect server, alerts to 127.0.0.1 -------------------

FAST = {"models": ["lr"], "folds": 2, "generated_rows": 2000, "seed": 3, "data": "generated"}


@pytest.fixture
def alerts(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertReceiver]:
    with receiver() as server:
        monkeypatch.setenv("CHURN_RETRAIN_ALERT_URL", server.url)
        yield server


@pytest.mark.usefixtures("prefect_server")
def test_a_champion_that_decays_alerts_with_the_drop_and_its_interval(
    alerts: AlertReceiver,
) -> None:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    first = retrain(RetrainParameters(period="2026-01", **FAST))
    assert first.champion_version_after == "1" and first.champion_health is None
    alerts.clear()
    # Concept drift (a contract no longer keeps customers) hurts the champion; a rule that
    # keeps it (nothing can clear a 0.5 improvement), so the degraded champion stays.
    keep = {"min_improvement": 0.5, "floor": 0.5}
    record = retrain(
        RetrainParameters(
            period="2026-02",
            drift=0.5,
            scenario="contract_shock",
            rule=keep,
            drift_gate={"enabled": False},
            **FAST,
        )
    )
    health = record.champion_health
    assert health is not None and health.at_promotion is not None, record
    assert health.state == "degraded", health.text()
    assert record.champion_version_after == "1"
    [alert] = alerts.bodies
    assert "champion DEGRADED" in alert["subject"]
    assert "champion v1 roc_auc" in alert["text"] and health.change is not None
    assert health.change.text() in alert["text"]  # the drop and its interval


@pytest.mark.usefixtures("prefect_server")
def test_a_champion_below_the_floor_that_stays_fails_the_run_and_alerts(
    alerts: AlertReceiver,
) -> None:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain
    from tasks.errors import EXIT_CHAMPION_BELOW_FLOOR, ChampionBelowFloor

    retrain(RetrainParameters(period="2026-01", **FAST))
    alerts.clear()
    # Raise the bar over both models: the champion misses it and no challenger can replace it.
    high = {"floor": 0.99, "leakage_ceiling": None}
    state = retrain(RetrainParameters(period="2026-02", rule=high, **FAST), return_state=True)
    assert state.is_failed()
    with pytest.raises(
        ChampionBelowFloor, match=r"champion v1 roc_auc 0\.\d+ now .*below-floor"
    ) as caught:
        state.result()
    assert caught.value.exit_code == EXIT_CHAMPION_BELOW_FLOOR == 7
    assert "it stays champion (reject-below-floor)" in str(caught.value)
    [alert] = alerts.bodies
    assert "champion BELOW FLOOR" in alert["subject"] and "below-floor" in alert["text"]
    from mlflow.tracking import MlflowClient

    assert str(MlflowClient().get_model_version_by_alias("telco-churn", "champion").version) == "1"


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("notify", [True, False], ids=["notifications on", "off"])
def test_a_promotion_sends_one_message_when_asked_and_none_otherwise(
    alerts: AlertReceiver, monkeypatch: pytest.MonkeyPatch, notify: bool
) -> None:
    from flows.parameters import RetrainParameters, RollbackParameters
    from flows.retrain import retrain
    from flows.rollback import rollback

    monkeypatch.setenv("CHURN_RETRAIN_NOTIFY_DECISIONS", str(notify).lower())
    weak = {**FAST, "models": ["dummy"], "rule": {"floor": 0.0}}  # a constant-score champion v1
    retrain(RetrainParameters(period="2026-01", **weak))
    alerts.clear()
    record = retrain(RetrainParameters(period="2026-02", **FAST))
    assert record.promoted and record.champion_version_after == "2"
    if not notify:
        assert alerts.bodies == []
        return
    [message] = alerts.bodies
    assert "churn-retrain 2026-02: challenger PROMOTED" in message["subject"]
    # The constant-score champion is below the floor: it is replaced on confident evidence.
    assert "Decision: replace-below-floor: champion now v2; roc_auc change +" in message["text"]
    assert record.mlflow_run_url in message["text"] and "Error:" not in message["text"]
    alerts.clear()
    again = retrain(RetrainParameters(period="2026-02", **FAST))  # that month already promoted
    [kept] = alerts.bodies
    assert "champion KEPT" in kept["subject"] and f"Decision: {again.verdict}" in kept["text"]
    alerts.clear()
    rollback(RollbackParameters(reason="announced"))
    [rolled] = alerts.bodies
    assert "champion ROLLED BACK" in rolled["subject"] and "v2 to v1" in rolled["text"]
    assert "announced" in rolled["text"]
