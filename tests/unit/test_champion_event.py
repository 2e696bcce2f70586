"""The champion-moved event: what it carries (no credentials), when it is sent (only for a
move), and that a server that cannot take it costs a warning, never the run."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

from tasks.registry import events
from tasks.registry.events import (
    CHAMPION_MOVED,
    ChampionMoved,
    announce_promotion,
    champion_moved_event,
    emit_champion_moved,
)
from tasks.registry.history import HistoryEvent
from tasks.registry.promote import Promotion

FLOW_RUN = "0b6f3c52-5f0e-4b0c-9a51-7d1f0c2e9a11"


def _history(**changes: Any) -> HistoryEvent:
    fields: dict[str, Any] = {
        "seq": 4,
        "action": "promote",
        "from_version": "2",
        "to_version": "3",
        "by": "ops",
        "at": "2026-03-01T02:04:05.123+00:00",
        "decision_run": "a1b2c3",
        "flow_run": FLOW_RUN,
        "reason": "challenger roc_auc 0.85 beats champion 0.82 (95% CI of the gain 0.01..0.05)",
    }
    return HistoryEvent(**{**fields, **changes})


def test_the_event_names_the_model_the_versions_the_month_and_the_run() -> None:
    moved = ChampionMoved.of("telco-churn", _history(), period="2026-03", verdict="promote")
    event = champion_moved_event(moved)
    assert event.event == CHAMPION_MOVED == "churn-retrain.champion.moved"
    assert event.resource.id == "churn-retrain.model.telco-churn"
    assert event.resource.name == "telco-churn"
    payload = event.payload
    assert (payload["model"], payload["from_version"], payload["to_version"]) == (
        "telco-churn",
        "2",
        "3",
    )
    assert payload["period"] == "2026-03" and payload["verdict"] == "promote"
    assert payload["action"] == "promote" and payload["history_seq"] == 4
    assert payload["decision_run"] == "a1b2c3" and payload["flow_run"] == FLOW_RUN
    assert payload["reason"].startswith("challenger roc_auc 0.85")
    roles = {r.role: r.id for r in event.related}
    assert roles == {
        "champion": "churn-retrain.model-version.telco-churn.3",
        "previous-champion": "churn-retrain.model-version.telco-churn.2",
        "flow-run": f"prefect.flow-run.{FLOW_RUN}",
    }


def test_a_first_promotion_has_no_previous_champion_and_a_rollback_no_month() -> None:
    first = champion_moved_event(
        ChampionMoved.of(
            "m",
            _history(from_version=None, to_version="1"),
            period="2026-01",
            verdict="promote-first",
        )
    )
    assert first.payload["from_version"] is None
    assert {r.role for r in first.related} == {"champion", "flow-run"}
    back = champion_moved_event(
        ChampionMoved.of(
            "m", _history(action="rollback", decision_run=None), period=None, verdict="rollback"
        )
    )
    assert back.payload["period"] is None and back.payload["verdict"] == "rollback"
    assert back.payload["action"] == "rollback"


def test_no_credentials_go_into_the_event() -> None:
    """An operator's rollback reason may paste a URL; the event is readable in the UI."""
    reason = "bad data from https://etl:s3cr3t@lake.example.org/telco/2026-03.csv?token=abc"
    event = champion_moved_event(
        ChampionMoved.of("m", _history(reason=reason), period=None, verdict="rollback")
    )
    text = event.model_dump_json()
    assert "s3cr3t" not in text and "token=abc" not in text and "etl" not in text
    assert "https://lake.example.org/telco/2026-03.csv" in event.payload["reason"]


def _promotion(**changes: Any) -> Promotion:
    fields: dict[str, Any] = {
        "promoted": True,
        "conflict": False,
        "champion_before": "2",
        "champion_after": "3",
        "reason": "v3 replaces v2",
        "event": _history(),
    }
    return Promotion(**{**fields, **changes})


def test_only_a_move_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[ChampionMoved] = []
    monkeypatch.setattr(events, "emit_champion_moved", lambda moved: sent.append(moved))
    # A tie, a refused (conflicting) promotion: the alias did not move.
    announce_promotion("m", None, period="2026-03", verdict="tie")
    refused = _promotion(promoted=False, conflict=True, champion_after="2", event=None)
    announce_promotion("m", refused, period="2026-03", verdict="promote")
    assert sent == []
    announce_promotion("m", _promotion(), period="2026-03", verdict="promote")
    # A retry that found this run's move done (the attempt that moved failed after it).
    retried = _promotion(event=None, reason="already promoted by this run")
    announce_promotion("m", retried, period="2026-03", verdict="promote")
    assert [(m.from_version, m.to_version, m.history_seq) for m in sent] == [
        ("2", "3", 4),
        ("2", "3", None),
    ]


def test_a_server_that_cannot_take_the_event_costs_a_warning_not_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with socket.socket() as sock:  # a port nobody listens on: refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moved = ChampionMoved.of("m", _history(), period="2026-03", verdict="promote")
    started = time.monotonic()
    with (
        temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}),
        caplog.at_level(logging.WARNING),
    ):
        assert emit_champion_moved(moved, timeout_seconds=5) is None
    assert time.monotonic() - started < 6
    assert any(
        "NOT SENT" in r.getMessage() and "v2 -> v3" in r.getMessage() for r in caplog.records
    )
