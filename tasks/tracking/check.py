"""The pre-flight check: the tracking server answers and the registry can promote, before training."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tasks.errors import ServerUnreachable, TrackingUnavailable, unreachable_reason
from tasks.runtime.deadline import Deadline, DeadlineExceeded
from tasks.settings import Settings, redact_uri
from tasks.steps import step
from tasks.target import ModelTarget
from tasks.tracking.connection import (
    PROBE_ALIAS,
    PROBE_TAG,
    Connection,
    connect_tracking,
    is_http,
)


@dataclass(frozen=True)
class TrackingCheck:
    """What the check before training found (no credentials in here)."""

    server: str
    registry: str
    remote: bool
    user: str | None
    capabilities: tuple[str, ...]
    seconds: float

    def summary(self) -> str:
        if not self.remote:
            return f"tracking on {self.server} (no server to check)"
        who = f" as {self.user}" if self.user else ""
        return (
            f"tracking server {self.server} answers{who}; registry {self.registry} supports "
            f"{', '.join(self.capabilities)} (checked in {self.seconds:.2f} s)"
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:300]


def _json_body(response: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _route_exists(response: Any) -> bool:
    """False when the server does not know the route (old MLflow, a proxy without it)."""
    if response.status_code not in (404, 405, 501):
        return True
    body = _json_body(response)
    return bool(body and body.get("error_code") and body["error_code"] != "ENDPOINT_NOT_FOUND")


class _Prober:
    """GETs and POSTs to the tracking server, one attempt each, bounded by the timeout
    (`Deadline`, the project's one way to bound a call).

    Plain `requests` with the authentication MLflow's client documents: the connection's user
    and password (`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`) as basic auth, else
    `MLFLOW_TRACKING_TOKEN` as a bearer token; TLS as `MLFLOW_TRACKING_INSECURE_TLS`,
    `MLFLOW_TRACKING_SERVER_CERT_PATH` and `MLFLOW_TRACKING_CLIENT_CERT_PATH` say. No retries.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def _auth(self) -> dict[str, Any]:
        from mlflow.environment_variables import MLFLOW_TRACKING_TOKEN

        username = self.connection.username
        password = self.connection.password
        if username and password is not None:
            return {"auth": (username, password.get_secret_value())}
        if token := MLFLOW_TRACKING_TOKEN.get():
            return {"headers": {"Authorization": f"Bearer {token}"}}
        return {}

    @staticmethod
    def _tls() -> dict[str, Any]:
        from mlflow.environment_variables import (
            MLFLOW_TRACKING_CLIENT_CERT_PATH,
            MLFLOW_TRACKING_INSECURE_TLS,
            MLFLOW_TRACKING_SERVER_CERT_PATH,
        )

        verify: bool | str = True
        if MLFLOW_TRACKING_INSECURE_TLS.get():
            verify = False
        elif server_cert := MLFLOW_TRACKING_SERVER_CERT_PATH.get():
            verify = server_cert
        tls: dict[str, Any] = {"verify": verify}
        if client_cert := MLFLOW_TRACKING_CLIENT_CERT_PATH.get():
            tls["cert"] = client_cert
        return tls

    def __call__(self, uri: str, endpoint: str, method: str = "GET", **kwargs: Any) -> Any:
        import requests

        timeout = self.connection.timeout_seconds

        def request() -> Any:
            return requests.request(
                method,
                uri.rstrip("/") + endpoint,
                timeout=timeout,
                allow_redirects=True,
                **self._auth(),
                **self._tls(),
                **kwargs,
            )

        try:
            # Each connect and read within the timeout; the whole answer too (a server that
            # trickles its answer would otherwise keep the check waiting).
            return Deadline.after(timeout).call(request)
        except DeadlineExceeded:
            raise ServerUnreachable(
                f"MLflow server {redact_uri(uri)} is unreachable: no answer within "
                f"{timeout:g} s (timed out)",
                timed_out=True,
            ) from None
        except Exception as exc:
            reason = unreachable_reason(exc, timeout_seconds=timeout)
            raise ServerUnreachable(
                f"MLflow server {redact_uri(uri)} is unreachable: {reason or _last_line(str(exc))}",
                timed_out=bool(reason and "timed out" in reason),
            ) from None


def _refusal(connection: Connection, uri: str, response: Any, what: str) -> str | None:
    """A person-readable problem for a 401/403/5xx/non-MLflow answer, or None if it is fine."""
    server = redact_uri(uri)
    status = response.status_code
    if status == 401:
        who = f"user {connection.username!r}" if connection.username else "no credentials"
        return (
            f"MLflow server {server} refused the credentials ({who}; HTTP 401): check "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or the DagsHub token"
        )
    if status == 403:
        who = f"user {connection.username!r}" if connection.username else "anonymous access"
        return f"MLflow server {server} denies {what} to {who} (HTTP 403)"
    if status >= 500:
        return (
            f"MLflow server {server} fails on {what} (HTTP {status}: {_last_line(response.text)})"
        )
    return None


def probe_tracking(connection: Connection, model_name: str) -> tuple[str, ...]:
    """Check the server answers and the registry has what the run uses; returns capabilities.

    Raises `TrackingUnavailable` naming the server and the problem. Only HTTP stores are
    probed (a database URI has no server to ask). Read-only: the tag probe targets version 0,
    which never exists.
    """
    call = _Prober(connection)
    tracking, registry = connection.tracking_uri, connection.registry_uri
    if is_http(tracking):
        _probe_tracking_api(call, connection, tracking)
    if not is_http(registry):
        return ("tracking API",)
    _probe_registry(call, connection, registry, model_name)
    return ("registered models", "aliases", "version tags")


def _probe_tracking_api(call: _Prober, connection: Connection, tracking: str) -> None:
    response = call(tracking, "/api/2.0/mlflow/experiments/search", params={"max_results": 1})
    if problem := _refusal(connection, tracking, response, "reading experiments"):
        raise TrackingUnavailable(problem)
    if response.status_code != 200 or _json_body(response) is None:
        raise TrackingUnavailable(
            f"{redact_uri(tracking)} does not answer like an MLflow tracking server "
            f"(HTTP {response.status_code} on /api/2.0/mlflow/experiments/search): is the URI right?"
        )


def _probe_registry(call: _Prober, connection: Connection, registry: str, model_name: str) -> None:
    server = redact_uri(registry)
    response = call(
        registry,
        "/api/2.0/mlflow/registered-models/search",
        params={"filter": f"name='{model_name}'", "max_results": 1},
    )
    if problem := _refusal(connection, registry, response, "the model registry"):
        raise TrackingUnavailable(problem)
    body = _json_body(response)
    if response.status_code != 200 or body is None:
        raise TrackingUnavailable(
            f"MLflow server {server} has no model registry (HTTP {response.status_code} on "
            "/api/2.0/mlflow/registered-models/search); the run registers every challenger"
        )
    model_exists = bool(body.get("registered_models"))

    response = call(
        registry,
        "/api/2.0/mlflow/registered-models/alias",
        params={"name": model_name, "alias": PROBE_ALIAS},
    )
    if not _route_exists(response):
        raise TrackingUnavailable(
            f"the model registry on {server} does not support aliases (HTTP "
            f"{response.status_code} on /api/2.0/mlflow/registered-models/alias; MLflow 2.3 or "
            f"later has them): the champion is the model's `{PROBE_ALIAS}` alias, so promotion "
            "cannot work there"
        )
    # For a model that does not exist yet the auth layer may answer 403: nothing to read yet.
    if model_exists and (
        problem := _refusal(connection, registry, response, f"model {model_name!r}")
    ):
        raise TrackingUnavailable(problem)

    response = call(
        registry,
        "/api/2.0/mlflow/model-versions/set-tag",
        "POST",
        json={"name": model_name, "version": "0", "key": PROBE_TAG, "value": ""},
    )
    if not _route_exists(response):
        raise TrackingUnavailable(
            f"the model registry on {server} does not support model version tags (HTTP "
            f"{response.status_code} on /api/2.0/mlflow/model-versions/set-tag)"
        )
    # Only a refusal counts here: how a server treats a version that cannot exist is its own
    # business (404, 400, even 500), as long as the route is there.
    if model_exists and response.status_code in (401, 403):
        problem = _refusal(connection, registry, response, f"updates of model {model_name!r}")
        raise TrackingUnavailable(str(problem))


#: A connection refused (a restarting server) gets one more try this much later.
_RETRY_DELAY_SECONDS = 1.0


@step("check-tracking")
def check_tracking(settings: Settings, target: ModelTarget | None = None) -> TrackingCheck:
    """Connect MLflow and, for a server, check it answers and its registry can promote.

    Bounded: one attempt per probe, each within the request timeout, and one more try a second
    later when a connection failed (a restarting server), not on an answer, nor on a timeout (a
    server that kept silent for the whole timeout would only double the wait). The local SQLite
    store has no server: nothing to check.
    """
    started = time.perf_counter()
    model = (target or ModelTarget()).resolve(settings).model
    connection = connect_tracking(settings)
    capabilities: tuple[str, ...] = ()
    if connection.is_http:
        try:
            capabilities = probe_tracking(connection, model)
        except ServerUnreachable as exc:
            if exc.timed_out:
                raise
            time.sleep(_RETRY_DELAY_SECONDS)
            capabilities = probe_tracking(connection, model)
    check = TrackingCheck(
        server=connection.server,
        registry=redact_uri(connection.registry_uri),
        remote=connection.is_http,
        user=connection.username,
        capabilities=capabilities,
        seconds=round(time.perf_counter() - started, 3),
    )
    _logger().info(check.summary())
    return check


def _logger() -> Any:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger, get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:  # called as a plain function (tests: check_tracking.fn)
        return get_logger(__name__)
