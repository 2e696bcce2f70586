"""Where MLflow lives and how to log in: one connection for every command."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from tasks.errors import TrackingMisconfigured
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
        return any(is_http(uri) for uri in (self.tracking_uri, self.registry_uri))

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


def is_http(uri: str) -> bool:
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
        is_http(u) for u in (settings.resolved_tracking_uri, settings.resolved_registry_uri)
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
    for uri in dict.fromkeys((connection.tracking_uri, connection.registry_uri)):
        if (database := sqlite_path(uri)) is not None:
            create_local_store(database, connection.tracking_uri, connection.registry_uri)
    return connection


def open_existing_local_store(settings: Settings) -> bool:
    """Open the local store ahead of a command's flow (the ~1 s schema check overlaps the
    Prefect server's boot) when it exists; True if it was opened. Never creates a store (a
    command that only reads, such as validate, leaves none behind), never raises: the flow
    opens it again and reports a failure its usual way."""
    uris = (settings.resolved_tracking_uri, settings.resolved_registry_uri)
    try:
        paths = [sqlite_path(uri) for uri in uris]
        if not settings.is_local or not all(p is not None and p.is_file() for p in paths):
            return False
        connect_tracking(settings)
    except Exception:  # best effort: the flow connects again and names what went wrong
        return False
    return True


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///PATH` URI, else None (a server, memory, another DB)."""
    if not uri.startswith("sqlite:///") or uri in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


#: SQLite stores this process has created or migrated (or found current) under the lock.
_READY_STORES: set[str] = set()


def create_local_store(database: Path, tracking_uri: str, registry_uri: str) -> None:
    """Create or migrate an MLflow SQLite store once, under an OS lock on `<database>.lock`.

    MLflow creates and migrates a SQLite store when its first client opens it, with no lock of
    its own: two first runs at once both ran the migrations and one crashed (`duplicate column
    name`). Here the first client of each process opens both stores (tracking and registry,
    each migrates) holding the OS lock on a lock file next to the database (filelock), so a second
    process waits and then finds the schema current. The kernel drops the lock when its holder
    dies, even by SIGKILL. Later calls in the process do nothing (MLflow keeps the store).
    """
    if str(database) in _READY_STORES:
        return
    from mlflow.tracking import MlflowClient

    database.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    lock, held = FileLock(database.with_name(database.name + ".lock")), True
    try:
        lock.acquire()
    except OSError as exc:
        # A read-only state directory: no lock file, and no migration either; a store that
        # exists is opened as it is (reading works; a write then fails by name).
        if exc.errno not in (errno.EROFS, errno.EACCES) or not database.exists():
            raise
        held = False
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    finally:
        if held:
            lock.release()
    _READY_STORES.add(str(database))
