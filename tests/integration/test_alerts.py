"""Alerts: what they say, how they travel (real receivers on 127.0.0.1), and that they never hang."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.alerts.delivery import NOT_DELIVERED, deliver_alert
from tasks.alerts.message import Alert, build_alert
from tasks.errors import SnapshotRejected, TrainingFailed
from tasks.gate.failures import FailedCheck
from tasks.gate.suite import ValidationReport
from tasks.settings import Settings
from tests.alert_receivers import AlertReceiver, closed_port_url, receiver, silent_receiver

FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": 1500}


def _rejection() -> SnapshotRejected:
    report = ValidationReport(
        source="/data/2026-02.csv",
        rows=1500,
        evaluated=66,
        failures=(
            FailedCheck(
                "Contract",
                "expect_column_values_to_be_in_set",
                "2 values outside {Month-to-month, One year, Two year}",
                2,
            ),
            FailedCheck("tenure", "expect_column_values_to_not_be_null", "3 null values", 3),
            FailedCheck("tenure", "expect_column_values_to_be_between", "1 value outside", 1),
        ),
    )
    return SnapshotRejected(
        f"Snapshot /data/2026-02.csv rejected: {report.summary()}", report=report
    )


def _alert(error: BaseException | None) -> Alert:
    return build_alert(
        flow="retrain",
        flow_run_name="brave-owl",
        flow_run_id="0f0e",
        state="Failed",
        period="2026-02",
        source="https://host/data/2026-02.csv",
        error=error,
        report="file:///state/reports/0f0e/validation.html",
    )


def _settings(**values: object) -> Settings:
    return Settings.model_validate({"alert_timeout_seconds": 1.0, "alert_retries": 1, **values})


@pytest.fixture
def alerts() -> Iterator[AlertReceiver]:
    with receiver() as server:
        yield server


# --- what an alert says --------------------------------------------------------------------------


def test_a_rejection_alert_lists_failures_by_column_with_counts() -> None:
    alert = _alert(_rejection())
    text = alert.text()
    assert alert.subject == "churn-retrain 2026-02: snapshot REJECTED (retrain run brave-owl)"
    assert "Period: 2026-02" in text and "Source: /data/2026-02.csv" in text
    assert "  Contract: 1 failed, 2 rows: 2 values outside {Month-to-month" in text
    assert "  tenure: 2 failed, 4 rows: 3 null values; 1 value outside" in text
    assert "Report: file:///state/reports/0f0e/validation.html" in text
    payload = alert.payload()
    assert payload["alert"]["failures"][0]["column"] == "Contract"
    assert json.loads(json.dumps(payload)) == payload


def test_foreign_exception_messages_are_not_quoted() -> None:
    """A library error can quote a cell or a URL with a token: only its type goes out."""
    text = _alert(KeyError("SECRET-4421 Weekly")).text()
    assert "Error: KeyError: see the flow run's logs" in text and "SECRET" not in text
    ours = _alert(TrainingFailed("only 12 training rows; at least 100 are needed")).text()
    assert "TrainingFailed: only 12 training rows" in ours
    assert "churn-retrain 2026-02: run Failed" in _alert(TrainingFailed("x")).subject


# --- how it travels ------------------------------------------------------------------------------


def test_webhook_url_gets_json_with_text_and_fields(alerts: AlertReceiver) -> None:
    [delivery] = deliver_alert(_alert(_rejection()), _settings(alert_url=alerts.url))
    assert delivery.delivered and delivery.attempts == 1
    [body] = alerts.bodies
    assert body["subject"].startswith("churn-retrain 2026-02: snapshot REJECTED")
    assert body["alert"]["period"] == "2026-02" and "Contract" in body["text"]


def test_transient_failures_are_retried_a_bounded_number_of_times() -> None:
    with receiver(failures=2) as flaky:
        [delivery] = deliver_alert(_alert(None), _settings(alert_url=flaky.url, alert_retries=2))
        assert delivery.delivered and delivery.attempts == 3 and len(flaky.bodies) == 1
    with receiver(failures=5) as down:
        [delivery] = deliver_alert(_alert(None), _settings(alert_url=down.url, alert_retries=1))
        assert not delivery.delivered and delivery.attempts == 2 and down.requests == 2
        assert delivery.error == "HTTP 503"


def test_a_refusal_is_not_retried_and_the_token_stays_secret() -> None:
    with receiver(status=404) as refusing:
        url = refusing.url + "?token=SECRET-TOKEN"
        [delivery] = deliver_alert(_alert(None), _settings(alert_url=url, alert_retries=3))
    assert not delivery.delivered and delivery.attempts == 1
    assert delivery.error is not None and delivery.error.startswith("HTTP 404")
    assert "SECRET" not in delivery.destination + delivery.error
    assert "SECRET" not in repr(_settings(alert_url=url))


@pytest.mark.parametrize("kind", ["closed port", "never answers"])
def test_a_dead_receiver_cannot_hang_delivery(kind: str) -> None:
    started = time.monotonic()
    if kind == "closed port":
        [delivery] = deliver_alert(_alert(None), _settings(alert_url=closed_port_url()))
    else:
        with silent_receiver() as url:
            [delivery] = deliver_alert(_alert(None), _settings(alert_url=url))
    elapsed = time.monotonic() - started
    assert not delivery.delivered and delivery.attempts == 2
    # Two attempts of at most timeout + 1 s each, plus one 0.5 s back-off.
    assert elapsed < 5.5, elapsed
    expected = "cannot connect" if kind == "closed port" else "timed out"
    assert delivery.error is not None and expected in delivery.error


def test_apprise_urls_reach_the_receiver_too(alerts: AlertReceiver) -> None:
    """Email, Slack and others go through Apprise URLs; json:// posts to our receiver."""
    url = alerts.url.replace("http://", "json://")
    [delivery] = deliver_alert(_alert(_rejection()), _settings(alert_url=url))
    assert delivery.delivered, delivery.error
    # One message per attempt: a retry after an answer lost to a loaded machine repeats it
    # (delivery is at least once), never anything else.
    assert 1 <= len(alerts.bodies) <= delivery.attempts, (alerts.bodies, delivery.attempts)
    body = alerts.bodies[0]
    assert all(other == body for other in alerts.bodies)
    assert "Contract" in body["message"] and "REJECTED" in body["title"]
    [bad] = deliver_alert(_alert(None), _settings(alert_url="nonsense://x"))
    assert not bad.delivered and bad.attempts == 1 and "not a supported" in (bad.error or "")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_saved_prefect_notification_block_by_name(alerts: AlertReceiver) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name="churn-alerts",
        url=alerts.url,
        json_data={"text": "{{subject}}\n{{body}}"},
    ).save("churn-test-alerts", overwrite=True)
    [delivery] = deliver_alert(
        _alert(_rejection()), _settings(alert_block="custom-webhook/churn-test-alerts")
    )
    assert delivery.delivered, delivery.error
    assert alerts.bodies[0]["text"].startswith("churn-retrain 2026-02: snapshot REJECTED")
    [missing] = deliver_alert(_alert(None), _settings(alert_block="custom-webhook/nope"))
    assert not missing.delivered and missing.attempts == 1
    assert missing.error == "no saved block 'custom-webhook/nope'"


# --- the hook on a real failed run ---------------------------------------------------------------


def _flow_run_logs(flow_run_id: UUID) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send the batched logs now
    deadline = time.monotonic() + 10
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        text = "\n".join(log.message for log in logs)
        if NOT_DELIVERED in text or "Alert sent" in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def _header_only(tmp_path: Path) -> str:
    path = tmp_path / "2026-02.csv"
    path.write_text("customerID,gender,tenure,Churn\n")
    return str(path)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("kind", ["closed port", "never answers"])
def test_failed_run_with_an_unreachable_receiver_ends_failed_and_says_so(
    kind: str, state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_RETRAIN_ALERT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("CHURN_RETRAIN_ALERT_RETRIES", "1")
    params = RetrainParameters(period="2026-02", **{**FAST, "data": _header_only(tmp_path)})
    started = time.monotonic()
    if kind == "closed port":
        monkeypatch.setenv("CHURN_RETRAIN_ALERT_URL", closed_port_url())
        state = retrain(params, return_state=True)
    else:
        with silent_receiver() as url:
            monkeypatch.setenv("CHURN_RETRAIN_ALERT_URL", url)
            state = retrain(params, return_state=True)
    elapsed = time.monotonic() - started
    assert state.is_failed() and state.name == "Failed", state  # not Crashed, not Completed
    assert "SnapshotRejected" in (state.message or "") and "header only" in (state.message or "")
    assert elapsed < 30, elapsed
    logs = _flow_run_logs(state.state_details.flow_run_id)
    assert f"{NOT_DELIVERED} to http://127.0.0.1:" in logs
    assert "The run failed with SnapshotRejected" in logs


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_failed_run_alert_carries_run_period_problem_and_report(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: AlertReceiver
) -> None:
    monkeypatch.setenv("CHURN_RETRAIN_ALERT_URL", alerts.url)
    state = retrain(
        RetrainParameters(period="2026-02", **{**FAST, "data": _header_only(tmp_path)}),
        return_state=True,
    )
    assert state.is_failed()
    [body] = alerts.bodies
    alert = body["alert"]
    assert alert["period"] == "2026-02" and alert["state"] == "Failed"
    assert alert["flow_run_id"] == str(state.state_details.flow_run_id)
    assert alert["failures"][0]["problems"] == ["header only, no rows"]
    report = Path(alert["report"].removeprefix("file://"))
    assert report.is_file() and report.is_relative_to(state_home / "reports")
    assert "header only, no rows" in report.read_text()
    assert "Alert sent to http://127.0.0.1:" in _flow_run_logs(state.state_details.flow_run_id)
