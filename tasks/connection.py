"""Reaching the tracking server: credentials, bounded HTTP, and a check before any training.

DagsHub is set up headlessly: we set the MLflow variables `dagshub.init` would set (its MLflow
URI, the user, the token as password). `dagshub.init` itself is never called: without a token it
opens an OAuth prompt and waits for ever, and it creates the repository when it does not exist.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from tasks.errors import TrackingMisconfigured, TrackingUnavailable
from tasks.settings import Settings, redact_uri

#: The alias the run moves; probed so a registry without aliases is caught before training.
PROBE_ALIAS = "champion"
#: A tag key only the capability probe uses; version 0 never exists, so nothing is written.
PROBE_TAG = "churn-retrain.capability-probe"

_CREDENTIAL_VARIABLES = frozenset({"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"})
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_TOKEN_HELP = (
    "set CHURN_RETRAIN_DAGSHUB_TOKEN (or DAGSHUB_USER_TOKEN), or name a Prefect Secret block "
    "holding it in CHURN_RETRAIN_DAGSHUB_TOKEN_BLOCK"
)


class ServerUnreachable(TrackingUnavailable):
    """No HTTP answer at all: refused, timed out, DNS or TLS failure."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Connection:
    """Where MLflow talks to and how. The password stays a SecretStr: the repr shows stars."""

    tracking_uri: str
    registry_uri: str
    username: str | None
    password: SecretStr | None
    timeout_seconds: int
    max_retries: int
    backoff_factor: int

    @property
    def server(self) -> str:
        """The tracking URI fit for messages and tags."""
        return redact_uri(self.tracking_uri)

    @property
    def is_http(self) -> bool:
        """True when MLflow talks HTTP (a server to check), not to a database or files directly."""
        return any(_is_http(uri) for uri in (self.tracking_uri, self.registry_uri))

    def environment(self) -> dict[str, str]:
        """The MLflow variables for this connection (the password in clear: for os.environ only).

        The URIs are not among them: they go to `mlflow.set_tracking_uri`, because a
        `MLFLOW_TRACKING_URI` left in the environment would be read back as a setting.
        """
        env = {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.timeout_seconds),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.max_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.backoff_factor),
        }
        if self.username and self.password is not None:
            env["MLFLOW_TRACKING_USERNAME"] = self.username
            env["MLFLOW_TRACKING_PASSWORD"] = self.password.get_secret_value()
        return env


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


def _is_http(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def _blank(secret: SecretStr | None) -> bool:
    return secret is None or not secret.get_secret_value().strip()


def connection_for(settings: Settings, *, dagshub_token: SecretStr | None = None) -> Connection:
    """The connection `settings` describe. Pure: no network, no environment, no prompt.

    `dagshub_token` overrides the token in `settings` (the Prefect Secret block's value).
    Incomplete remote settings raise `TrackingMisconfigured` naming what to set.
    """
    username = settings.tracking_username or None
    password = settings.tracking_password
    if settings.uses_dagshub:
        if not (settings.dagshub_owner and settings.dagshub_repo):
            raise TrackingMisconfigured(
                "DagsHub tracking needs both CHURN_RETRAIN_DAGSHUB_OWNER and "
                "CHURN_RETRAIN_DAGSHUB_REPO; only "
                + ("the owner" if settings.dagshub_owner else "the repository")
                + " is set"
            )
        uri = settings.dagshub_tracking_uri
        if settings.tracking_uri and settings.tracking_uri.rstrip("/") != uri:
            raise TrackingMisconfigured(
                f"both DagsHub ({uri}) and another tracking URI "
                f"({redact_uri(settings.tracking_uri)}) are configured; unset one of them"
            )
        token = dagshub_token if dagshub_token is not None else settings.dagshub_token
        if _blank(token):
            raise TrackingMisconfigured(
                f"DagsHub tracking on {uri} needs an access token: {_TOKEN_HELP}. "
                "No interactive login is attempted."
            )
        # DagsHub takes the token as the basic-auth password of the user (the owner by default).
        username = settings.tracking_username or settings.dagshub_owner
        password = token
    elif not any(
        _is_http(u) for u in (settings.resolved_tracking_uri, settings.resolved_registry_uri)
    ):
        username, password = None, None  # a local store or a database: nobody to log in to
    elif not _blank(password) and not username:
        raise TrackingMisconfigured(
            "a tracking password is set but no user: set MLFLOW_TRACKING_USERNAME too"
        )
    elif username and _blank(password):
        raise TrackingMisconfigured(
            f"tracking user {username!r} is set but no password: set MLFLOW_TRACKING_PASSWORD "
            "too (MLflow sends no credentials at all with only a user)"
        )
    return Connection(
        tracking_uri=settings.resolved_tracking_uri,
        registry_uri=settings.resolved_registry_uri,
        username=username,
        password=None if _blank(password) else password,
        timeout_seconds=settings.request_timeout_seconds,
        max_retries=settings.request_max_retries,
        backoff_factor=settings.request_backoff_factor,
    )


def resolve_dagshub_token(settings: Settings) -> SecretStr | None:
    """The DagsHub token from the settings, else from the named Prefect Secret block."""
    if not settings.uses_dagshub or not _blank(settings.dagshub_token):
        return settings.dagshub_token
    if not settings.dagshub_token_block:
        return None
    from prefect.blocks.system import Secret

    name = settings.dagshub_token_block
    try:
        block: Any = Secret.load(name)  # sync here: returns the block, not a coroutine
    except Exception as exc:  # a missing block, no Prefect API: both mean no token
        raise TrackingMisconfigured(
            f"the Prefect Secret block {name!r} holding the DagsHub token could not be loaded "
            f"({type(exc).__name__}); create it or {_TOKEN_HELP}"
        ) from None
    # Not Secret.get(): it parses JSON, and a token of digits would come back as a number.
    return SecretStr(str(block.value.get_secret_value()))


def connect_tracking(settings: Settings) -> Connection:
    """Point this process's MLflow at the configured store, with credentials and HTTP bounds."""
    import mlflow

    connection = connection_for(settings, dagshub_token=resolve_dagshub_token(settings))
    environment = connection.environment()
    for name in _CREDENTIAL_VARIABLES - environment.keys():
        os.environ.pop(name, None)  # e.g. from a .env: no stale credentials for another server
    os.environ.update(environment)
    # mlflow.set_*_uri also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI, which the next
    # Settings() in this process (a served flow, tests) would read back as configuration: a
    # local run would stop counting as local, a changed server would keep the old registry.
    exported = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(connection.tracking_uri)
    mlflow.set_registry_uri(connection.registry_uri)
    for name, value in exported.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return connection


# --- the check -------------------------------------------------------------------------------


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def unreachable_reason(exc: BaseException, *, timeout_seconds: int | None = None) -> str | None:
    """Why the server could not be talked to (refused, no answer, ...), or None if it answered.

    Looks at the exception and what it was raised from: MLflow wraps the `requests` error in
    an `MlflowException` whose message quotes it.
    """
    import requests
    import urllib3

    chain = list(_exception_chain(exc))
    network = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError)
    text = " ".join(str(e) for e in chain).lower()
    if not any(isinstance(e, network) for e in chain) and not (
        "api request to" in text and "failed with" in text and "exception" in text
    ):
        return None  # an answer (HTTP error, bad data, a bug): not the server going away
    if any(isinstance(e, requests.Timeout | TimeoutError) for e in chain) or "timed out" in text:
        within = f" within {timeout_seconds} s" if timeout_seconds else ""
        return f"no answer{within} (timed out)"
    if "connection refused" in text:
        return "connection refused: nothing listens there (server down?)"
    if "name or service not known" in text or "name resolution" in text:
        return "host name not found"
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return "TLS handshake failed"
    return "connection failed (" + _last_line(str(chain[-1])) + ")"


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
    """GETs and POSTs to the tracking server, one attempt each, bounded by the timeout."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def __call__(self, uri: str, endpoint: str, method: str = "GET", **kwargs: Any) -> Any:
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            # The same request path as the MLflow client (auth headers, TLS options), with no
            # retries and no retried status codes: the check answers in one timeout.
            return http_request(
                get_default_host_creds(uri),
                endpoint,
                method,
                max_retries=0,
                backoff_factor=0,
                retry_codes=(),
                timeout=self.connection.timeout_seconds,
                raise_on_status=False,
                **kwargs,
            )
        except Exception as exc:
            reason = unreachable_reason(exc, timeout_seconds=self.connection.timeout_seconds)
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
    if _is_http(tracking):
        _probe_tracking_api(call, connection, tracking)
    if not _is_http(registry):
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


def _refused_only(task: object, task_run: object, state: object) -> bool:
    """Retry the check once when a connection failed (a restarting server), not on an answer.

    Nor on a timeout: a server that kept silent for the whole timeout would only double the wait.
    """
    exc = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    return isinstance(exc, ServerUnreachable) and not exc.timed_out


@task(
    name="check-tracking",
    retries=1,
    retry_delay_seconds=1,
    retry_condition_fn=_refused_only,
    cache_policy=NO_CACHE,  # nothing to reuse, and no reason to hash settings holding secrets
)
def check_tracking(settings: Settings) -> TrackingCheck:
    """Connect MLflow and, for a server, check it answers and its registry can promote.

    Bounded: one attempt per probe, each within the request timeout, and one retry a second
    later when a connection failed. A server that accepts connections but never answers costs
    one timeout. The local SQLite store has no server: nothing to check.
    """
    started = time.perf_counter()
    connection = connect_tracking(settings)
    capabilities: tuple[str, ...] = ()
    if connection.is_http:
        capabilities = probe_tracking(connection, settings.model_name)
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


def tracking_lost(exc: BaseException, *, run_id: str) -> TrackingUnavailable | None:
    """A clear error for a server that went away mid-run, or None for any other failure."""
    import mlflow

    reason = unreachable_reason(exc)
    if reason is None:
        return None
    return TrackingUnavailable(
        f"MLflow server {redact_uri(mlflow.get_tracking_uri())} went away during the run: "
        f"{reason}. The run stopped at that step; nothing after it happened (MLflow run "
        f"{run_id} may still show RUNNING). Rerun when the server is back."
    )
