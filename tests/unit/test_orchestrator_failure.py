"""Issue 30: a Prefect server failing under a run (its PostgreSQL stopped) is a named failure,
the run's own failure named with it; an answer that is not an outage stays a crash."""

from __future__ import annotations

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.errors import (
    EXIT_ORCHESTRATOR,
    EXIT_TRACKING,
    TrackingUnavailable,
    orchestrator_failure,
    unreachable_reason,
)

API = "http://127.0.0.1:4299/api"


def _answer(status: int, url: str = f"{API}/flow_runs/abc/set_state") -> PrefectHTTPStatusError:
    request = httpx.Request("POST", url)
    response = httpx.Response(status, request=request, json={"exception_message": "boom"})
    error = httpx.HTTPStatusError(f"Server error '{status}'", request=request, response=response)
    return PrefectHTTPStatusError.from_httpx_error(error)


def _raised_while_handling(first: BaseException, then: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise then from None  # as Prefect's client does
    except BaseException as exc:
        return exc


def test_a_5xx_from_the_prefect_api_names_the_server_and_the_call() -> None:
    with temporary_settings({PREFECT_API_URL: API}):
        failure = orchestrator_failure(_answer(500))
    assert failure is not None and failure.exit_code == EXIT_ORCHESTRATOR
    assert str(failure).startswith(
        f"the Prefect server {API} failed during the run: it answered HTTP 500 to "
        "POST /flow_runs/abc/set_state (its database may be down"
    )
    assert "marks it Crashed" in str(failure)


def test_the_runs_own_failure_is_named_and_keeps_its_exit_status() -> None:
    lost = TrackingUnavailable("MLflow server http://x went away during the run")
    with temporary_settings({PREFECT_API_URL: API}):
        failure = orchestrator_failure(_raised_while_handling(lost, _answer(503)))
    assert failure is not None and failure.exit_code == EXIT_TRACKING
    assert str(failure).endswith(
        "The run had failed first: MLflow server http://x went away during the run"
    )


def test_a_connection_error_to_the_prefect_api_is_named() -> None:
    error = httpx.ConnectError("All connection attempts failed")
    error.request = httpx.Request("GET", f"{API}/flow_runs/abc")
    with temporary_settings({PREFECT_API_URL: API}):
        failure = orchestrator_failure(error)
    assert failure is not None
    assert "GET /flow_runs/abc failed: ConnectError (All connection attempts failed)" in str(
        failure
    )


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (_answer(404), "an answer, not an outage"),
        (_answer(500, "http://elsewhere:9/api/x"), "another server's error"),
        (ValueError("a bug"), "not an HTTP error"),
    ],
)
def test_anything_else_is_not_an_orchestrator_failure(error: BaseException, why: str) -> None:
    with temporary_settings({PREFECT_API_URL: API}):
        assert orchestrator_failure(error) is None, why


def test_an_mlflow_server_answering_503_to_every_retry_says_so() -> None:
    error = Exception(
        "API request to http://127.0.0.1:5/api/2.0/mlflow/runs/get failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=5): Max retries exceeded with url: x "
        "(Caused by ResponseError('too many 503 error responses'))"
    )
    assert unreachable_reason(error) == "it answers HTTP 503 (every retry too)"
