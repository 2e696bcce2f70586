"""Settings to MLflow connection (DagsHub, basic auth, HTTP bounds) and the check before training.

The DagsHub path is checked without any network: DagsHub's own host cannot run here, so these
tests check what we would send it. Servers that misbehave (closed port, black hole, not MLflow,
a registry without aliases) are small real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from tasks.errors import (
    TrackingMisconfigured,
    TrackingUnavailable,
    TrainingFailed,
    is_transient,
    unreachable_reason,
)
from tasks.settings import Settings, redact_uri
from tasks.tracking.check import check_tracking
from tasks.tracking.connection import (
    connect_tracking,
    connection_for,
    open_existing_local_store,
    resolve_dagshub_token,
)
from tests.servers import run_cli

TOKEN = "dagshub-token-4b1d"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# --- DagsHub -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("state_home", "no_network")
def test_dagshub_settings_give_its_mlflow_uri_and_credentials_without_network() -> None:
    settings = _settings(dagshub_owner="acme", dagshub_repo="churn", dagshub_token=TOKEN)
    connection = connection_for(settings)
    assert connection.tracking_uri == "https://dagshub.com/acme/churn.mlflow"
    assert connection.registry_uri == connection.tracking_uri
    assert connection.environment() == {
        "MLFLOW_TRACKING_USERNAME": "acme",
        "MLFLOW_TRACKING_PASSWORD": TOKEN,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    assert not settings.is_local

    # Applied at run start: MLflow's own view, still without a single connection.
    connect_tracking(settings)
    assert mlflow.get_tracking_uri() == "https://dagshub.com/acme/churn.mlflow"
    assert mlflow.get_registry_uri() == "https://dagshub.com/acme/churn.mlflow"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == TOKEN
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    _assert_dagshub_init_never_used()


@pytest.mark.usefixtures("state_home")
@pytest.mark.usefixtures("state_home")  # no MLFLOW_HTTP_* left over from an earlier run
def test_dagshub_settings_come_from_the_environment_or_a_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_OWNER", "acme-org")
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_REPO", "churn")
    monkeypatch.setenv("DAGSHUB_USER_TOKEN", TOKEN)  # the dagshub client's own variable
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "jane")  # a member of the owning org
    connection = connection_for(Settings())
    assert connection.tracking_uri == "https://dagshub.com/acme-org/churn.mlflow"
    assert connection.username == "jane"
    assert connection.password is not None and connection.password.get_secret_value() == TOKEN

    for name in ("CHURN_RETRAIN_DAGSHUB_OWNER", "CHURN_RETRAIN_DAGSHUB_REPO", "DAGSHUB_USER_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "CHURN_RETRAIN_DAGSHUB_OWNER=acme\nCHURN_RETRAIN_DAGSHUB_REPO=churn\n"
        f"CHURN_RETRAIN_DAGSHUB_TOKEN={TOKEN}\nCHURN_RETRAIN_REQUEST_TIMEOUT_SECONDS=20\n"
    )
    connection = connection_for(Settings(_env_file=dotenv))  # type: ignore[call-arg]
    assert connection.tracking_uri == "https://dagshub.com/acme/churn.mlflow"
    assert connection.username == "acme" and connection.timeout_seconds == 20


@pytest.mark.usefixtures("state_home", "no_network")
@pytest.mark.parametrize("token", [None, "", "   "])
def test_dagshub_without_a_token_fails_at_once_saying_what_to_set(token: str | None) -> None:
    settings = _settings(dagshub_owner="acme", dagshub_repo="churn", dagshub_token=token)
    started = time.perf_counter()
    with pytest.raises(
        TrackingMisconfigured,
        match=r"DagsHub tracking on https://dagshub\.com/acme/churn\.mlflow needs an access "
        r"token: set CHURN_RETRAIN_DAGSHUB_TOKEN .*No interactive login",
    ):
        check_tracking.fn(settings)
    assert time.perf_counter() - started < 1
    _assert_dagshub_init_never_used()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_cli_without_a_dagshub_token_exits_5_with_stdin_closed(tmp_path: Path) -> None:
    """As a scheduled run would: no terminal, nothing to answer a prompt, no way out to DagsHub."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURN_RETRAIN_"))}
    env.pop("DAGSHUB_USER_TOKEN", None)
    env |= {
        "CHURN_RETRAIN_HOME": str(tmp_path / "state"),
        "CHURN_RETRAIN_DAGSHUB_OWNER": "acme",
        "CHURN_RETRAIN_DAGSHUB_REPO": "churn",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        # Any attempt to reach dagshub.com would go to a closed local port and fail.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",  # the Prefect API is local
    }
    started = time.perf_counter()
    done = run_cli(
        "run", "--period", "2026-01", "--data", "generated", cwd=tmp_path, env=env, timeout=120
    )
    took = time.perf_counter() - started
    assert done.returncode == 5, done.stderr[-3000:]
    assert "TrackingMisconfigured: DagsHub tracking on https://dagshub.com/acme/churn.mlflow" in (
        done.stderr
    )
    assert "oauth" not in (done.stdout + done.stderr).lower()
    assert took < 60


@pytest.mark.usefixtures("state_home", "no_network")
def test_incomplete_remote_settings_are_named() -> None:
    with pytest.raises(TrackingMisconfigured, match="only the owner is set"):
        connection_for(_settings(dagshub_owner="acme", dagshub_token=TOKEN))
    with pytest.raises(TrackingMisconfigured, match=r"both DagsHub .* and another tracking URI"):
        connection_for(
            _settings(
                dagshub_owner="acme",
                dagshub_repo="churn",
                dagshub_token=TOKEN,
                tracking_uri="http://mlflow.internal:5000",
            )
        )
    with pytest.raises(TrackingMisconfigured, match="password is set but no user"):
        connection_for(_settings(tracking_uri="http://h:5000", tracking_password="pw"))
    with pytest.raises(TrackingMisconfigured, match="user 'bot' is set but no password"):
        connection_for(_settings(tracking_uri="http://h:5000", tracking_username="bot"))
    # Credentials matter only for a server: a stray user does not break a local run.
    local = connection_for(_settings(tracking_username="bot"))
    assert local.username is None and "MLFLOW_TRACKING_USERNAME" not in local.environment()
    # The same DagsHub URI set both ways (left over from `dagshub.init`) is fine.
    same = _settings(
        dagshub_owner="acme",
        dagshub_repo="churn",
        dagshub_token=TOKEN,
        tracking_uri="https://dagshub.com/acme/churn.mlflow/",
    )
    assert connection_for(same).tracking_uri == "https://dagshub.com/acme/churn.mlflow"


@pytest.mark.usefixtures("state_home", "prefect_server")
def test_the_dagshub_token_can_come_from_a_prefect_secret_block() -> None:
    from prefect.blocks.system import Secret

    Secret(value="0123456789").save("churn-dagshub-token", overwrite=True)
    settings = _settings(
        dagshub_owner="acme", dagshub_repo="churn", dagshub_token_block="churn-dagshub-token"
    )
    token = resolve_dagshub_token(settings)
    # A token of digits stays text (Secret.get() would have parsed it as a number).
    assert token is not None and token.get_secret_value() == "0123456789"
    env = connection_for(settings, dagshub_token=token).environment()
    assert env["MLFLOW_TRACKING_PASSWORD"] == "0123456789"

    missing = _settings(dagshub_owner="acme", dagshub_repo="churn", dagshub_token_block="nope")
    with pytest.raises(TrackingMisconfigured, match="Prefect Secret block 'nope'"):
        check_tracking.fn(missing)


# --- secrets stay secret -------------------------------------------------------------------------


@pytest.mark.usefixtures("state_home")
def test_secrets_never_show_in_repr_dumps_or_redacted_uris() -> None:
    settings = _settings(
        tracking_uri="https://bot:pa%40ss-9f2e@mlflow.example.org:8443/ml?token=qs-9f2e#frag",
        dagshub_token="tok-9f2e",
    )
    # Credentials in the URI move into the settings: MLflow's errors quote the URL they call.
    assert settings.tracking_uri == "https://mlflow.example.org:8443/ml?token=qs-9f2e#frag"
    assert settings.tracking_username == "bot"
    assert settings.tracking_password is not None
    assert settings.tracking_password.get_secret_value() == "pa@ss-9f2e"
    connection = connection_for(settings)
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(connection)):
        assert "pa@ss-9f2e" not in text and "tok-9f2e" not in text
    assert connection.server == "https://mlflow.example.org:8443/ml"

    assert redact_uri("http://u:p-9f2e@h:5000/x?k=v") == "http://h:5000/x"
    assert redact_uri("postgresql://u:p-9f2e@db/mlflow") == "postgresql://db/mlflow"
    assert redact_uri("sqlite:////state/mlflow.db") == "sqlite:////state/mlflow.db"
    # A database URI keeps its credentials (SQLAlchemy needs them there).
    db = _settings(tracking_uri="postgresql://u:p-9f2e@db/mlflow")
    assert db.tracking_uri == "postgresql://u:p-9f2e@db/mlflow" and db.tracking_username is None


# --- the check -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("state_home", "no_network")
def test_the_local_store_has_nothing_to_check(state_home: Path) -> None:
    check = check_tracking.fn(Settings())
    assert not check.remote and check.capabilities == ()
    assert check.server == f"sqlite:///{state_home / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == check.server


@pytest.mark.usefixtures("state_home", "no_network")
def test_validate_opens_an_existing_store_early_and_never_creates_one(state_home: Path) -> None:
    """`churn-retrain validate` opens the store while its server boots, only if it exists."""
    assert open_existing_local_store(Settings()) is False
    assert not (state_home / "mlflow.db").exists()
    connect_tracking(Settings())  # a run made the store
    assert open_existing_local_store(Settings()) is True
    assert mlflow.get_tracking_uri() == Settings().resolved_tracking_uri


@pytest.mark.usefixtures("state_home", "no_network")
def test_connecting_leaves_no_uri_behind_for_the_next_run() -> None:
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; read back, it would be a setting."""
    connect_tracking(_settings(tracking_uri="http://a:5000", registry_uri="http://b:5000"))
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (
        "http://a:5000",
        "http://b:5000",
    )
    # The next run in this process (a served flow) sees the configuration, not the last server.
    local = Settings()
    assert local.is_local and local.registry_uri is None
    connect_tracking(local)
    assert mlflow.get_registry_uri() == mlflow.get_tracking_uri() == local.resolved_tracking_uri


def test_a_closed_port_fails_at_once_naming_the_server(state_home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(
        TrackingUnavailable,
        match=rf"MLflow server http://127\.0\.0\.1:{port} is unreachable: connection refused",
    ):
        check_tracking.fn(_settings(tracking_uri=f"http://127.0.0.1:{port}"))
    assert time.perf_counter() - started < 5


def test_a_server_that_never_answers_fails_after_one_timeout(state_home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # connections complete in the kernel's backlog; nobody ever answers
        port = sock.getsockname()[1]
        settings = _settings(tracking_uri=f"http://127.0.0.1:{port}", request_timeout_seconds=2)
        started = time.perf_counter()
        with pytest.raises(TrackingUnavailable, match=r"no answer within 2 s \(timed out\)"):
            check_tracking.fn(settings)
        took = time.perf_counter() - started
    assert 1.5 < took < 6


class _StandIn(BaseHTTPRequestHandler):
    """Answers from a table of path -> (status, content type, body); 404 HTML otherwise."""

    routes: ClassVar[dict[str, tuple[int, str, str]]] = {}
    seen: ClassVar[list[str]] = []
    authorizations: ClassVar[list[str]] = []

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        self.seen.append(f"{self.command} {path}")
        self.authorizations.append(self.headers.get("Authorization") or "")
        status, kind, body = self.routes.get(
            path, (404, "text/html", "<p>The requested URL was not found on the server.</p>")
        )
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[tuple[str, type[_StandIn]]]:
    handler = type("Handler", (_StandIn,), {"routes": {}, "seen": [], "authorizations": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_a_web_page_is_not_taken_for_an_mlflow_server(
    state_home: Path, stand_in: tuple[str, type[_StandIn]]
) -> None:
    url, handler = stand_in
    handler.routes["/api/2.0/mlflow/experiments/search"] = (200, "text/html", "<html>login</html>")
    with pytest.raises(TrackingUnavailable, match="does not answer like an MLflow tracking server"):
        check_tracking.fn(_settings(tracking_uri=url))


def test_a_registry_without_aliases_is_refused_before_training(
    state_home: Path, stand_in: tuple[str, type[_StandIn]]
) -> None:
    """A stand-in for an MLflow 2.2 server: tracking and registry search, no alias routes."""
    url, handler = stand_in
    empty = (200, "application/json", "{}")
    handler.routes["/api/2.0/mlflow/experiments/search"] = empty
    handler.routes["/api/2.0/mlflow/registered-models/search"] = empty
    with pytest.raises(
        TrackingUnavailable,
        match=rf"the model registry on {url} does not support aliases .*MLflow 2\.3",
    ):
        check_tracking.fn(_settings(tracking_uri=url))
    assert handler.seen[-1] == "GET /api/2.0/mlflow/registered-models/alias"

    # With aliases but no version tags (a partial proxy), the tag probe says so.
    handler.routes["/api/2.0/mlflow/registered-models/alias"] = (
        404,
        "application/json",
        json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}),
    )
    with pytest.raises(TrackingUnavailable, match="does not support model version tags"):
        check_tracking.fn(_settings(tracking_uri=url))


def test_server_errors_and_refusals_are_named(
    state_home: Path, stand_in: tuple[str, type[_StandIn]]
) -> None:
    url, handler = stand_in
    handler.routes["/api/2.0/mlflow/experiments/search"] = (503, "text/plain", "maintenance")
    with pytest.raises(TrackingUnavailable, match=r"fails on reading experiments \(HTTP 503"):
        check_tracking.fn(_settings(tracking_uri=url))
    handler.routes["/api/2.0/mlflow/experiments/search"] = (403, "text/plain", "Permission denied")
    with pytest.raises(TrackingUnavailable, match=r"denies reading experiments to user 'bot'"):
        check_tracking.fn(
            _settings(tracking_uri=url, tracking_username="bot", tracking_password="pw-1")
        )


def test_lost_connections_are_told_apart_from_answers() -> None:
    try:
        requests.get("http://127.0.0.1:9/", timeout=2)
    except requests.ConnectionError as refused:
        try:
            raise MlflowException(
                f"API request to http://127.0.0.1:9 failed with exception {refused}"
            )
        except MlflowException as wrapped:
            assert unreachable_reason(wrapped) == (
                "connection refused: nothing listens there (server down?)"
            )
    assert unreachable_reason(requests.ReadTimeout("read timed out"), timeout_seconds=10) == (
        "no answer within 10 s (timed out)"
    )
    # Answers are not outages: a 403, a missing model, a training failure.
    assert (
        unreachable_reason(MlflowException("API request to endpoint x failed with error code 403"))
        is None
    )
    assert unreachable_reason(TrainingFailed("one class only")) is None


class _State:
    """What Prefect hands a `retry_condition_fn`: a state whose result is the exception."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self, raise_on_failure: bool = True) -> BaseException:
        return self.exc


def test_one_predicate_decides_what_is_retried() -> None:
    from mlflow.exceptions import RestException

    def retried(exc: BaseException) -> bool:
        return is_transient(None, None, _State(exc))

    busy = RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"})
    limited = RestException({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"})
    page = MlflowException("API request to endpoint /x failed with error code 502 != 200.")
    for answer in (busy, limited, page):
        assert unreachable_reason(answer) is not None and retried(answer)
    assert unreachable_reason(busy) == "it answers HTTP 503 (TEMPORARILY_UNAVAILABLE: busy)"
    try:
        requests.get("http://127.0.0.1:9/", timeout=2)
    except requests.ConnectionError as refused:
        assert retried(refused)
        wrapped = MlflowException(
            f"API request to http://127.0.0.1:9 failed with exception {refused}"
        )
        assert retried(wrapped)  # as MLflow's client raises it (not an OSError itself)
    assert retried(requests.ReadTimeout("read timed out")) and retried(TimeoutError())
    assert retried(OSError("disk hiccup"))  # storage: retried, though not "unreachable"
    assert unreachable_reason(OSError("disk hiccup")) is None
    # Answers and named failures are final.
    denied = RestException({"error_code": "PERMISSION_DENIED", "message": "no"})
    missing = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no model"})
    for final in (denied, missing, MlflowException("bad"), ValueError("bad data")):
        assert unreachable_reason(final) is None and not retried(final)
    assert not retried(TrackingUnavailable("went away during the run"))
    assert not retried(TrainingFailed("one class only"))


def test_the_check_sends_mlflows_documented_token_and_tls_settings(
    state_home: Path, stand_in: tuple[str, type[_StandIn]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No user and password: `MLFLOW_TRACKING_TOKEN` goes as a bearer token, as MLflow sends it."""
    url, handler = stand_in
    empty = (200, "application/json", "{}")
    handler.routes["/api/2.0/mlflow/experiments/search"] = empty
    handler.routes["/api/2.0/mlflow/registered-models/search"] = empty
    handler.routes["/api/2.0/mlflow/registered-models/alias"] = (
        404,
        "application/json",
        json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}),
    )
    handler.routes["/api/2.0/mlflow/model-versions/set-tag"] = handler.routes[
        "/api/2.0/mlflow/registered-models/alias"
    ]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "bearer-token-4b1d")
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")  # read; plain HTTP ignores it
    check = check_tracking.fn(_settings(tracking_uri=url))
    assert check.capabilities == ("registered models", "aliases", "version tags")
    assert set(handler.authorizations) == {"Bearer bearer-token-4b1d"}
    # With a user and password, basic auth (the token is not sent besides).
    handler.authorizations.clear()
    check_tracking.fn(
        _settings(tracking_uri=url, tracking_username="bot", tracking_password="pw-1")
    )
    assert {a.split()[0] for a in handler.authorizations} == {"Basic"}


def _assert_dagshub_init_never_used() -> None:
    """dagshub.init may open an OAuth prompt and create repositories: our code never calls it.

    (Whether `dagshub` is imported says nothing: PyCaret's loggers import it.)
    """
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("tasks/*.py"), *root.glob("flows/*.py")]:
        assert "dagshub.init(" not in path.read_text(), path
