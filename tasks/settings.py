"""Where state lives and which MLflow to talk to: one typed place, read from the environment."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAGSHUB_HOST = "https://dagshub.com"
#: Where `make mlflow-ui` (and `mlflow ui`'s default) serves the UI of a store without a server.
LOCAL_UI_URL = "http://127.0.0.1:5000"
#: Tracking URI schemes MLflow writes itself, with no server in between: a database through
#: SQLAlchemy (`dialect+driver://`) or files (a plain path, `file://`). No server assigns such a
#: store's artifact locations, so MLflow's default for them is `./mlruns` of the current
#: directory; and no web UI runs until someone starts one.
_SERVERLESS_SCHEMES = frozenset({"", "file", "sqlite", "postgresql", "mysql", "mssql"})


def _default_home() -> Path:
    # XDG state dir, so a run never writes into the current directory by surprise.
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "churn-retrain"


class Settings(BaseSettings):
    """Deployment settings (not run parameters): environment variables or an optional `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="CHURN_RETRAIN_", env_file=".env", extra="ignore", populate_by_name=True
    )

    home: Path = Field(
        default_factory=_default_home,
        description="Directory holding all local state: MLflow store, artifacts, Prefect DB, reports.",
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CHURN_RETRAIN_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI; default: SQLite store under `home`.",
    )
    registry_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CHURN_RETRAIN_REGISTRY_URI", "MLFLOW_REGISTRY_URI"),
        description="MLflow registry URI; default: same as the tracking URI.",
    )
    # Remote tracking. Secrets are SecretStr: repr, logs and model dumps show "**********".
    tracking_username: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CHURN_RETRAIN_TRACKING_USERNAME", "MLFLOW_TRACKING_USERNAME"
        ),
        description="User for an MLflow server with basic auth (DagsHub: your DagsHub user; "
        "default there: the repository owner).",
    )
    tracking_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CHURN_RETRAIN_TRACKING_PASSWORD", "MLFLOW_TRACKING_PASSWORD"
        ),
        description="Password for an MLflow server with basic auth.",
    )
    dagshub_owner: str | None = Field(
        default=None, description="DagsHub repository owner: with `dagshub_repo`, track on DagsHub."
    )
    dagshub_repo: str | None = Field(default=None, description="DagsHub repository name.")
    dagshub_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CHURN_RETRAIN_DAGSHUB_TOKEN", "DAGSHUB_USER_TOKEN"),
        description="DagsHub access token (used as the MLflow password).",
    )
    dagshub_token_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the DagsHub token (when no token is "
        "set directly).",
    )
    dagshub_host: str = Field(
        default=DAGSHUB_HOST,
        validation_alias=AliasChoices("CHURN_RETRAIN_DAGSHUB_HOST", "DAGSHUB_CLIENT_HOST"),
        description="DagsHub base URL (self-hosted DagsHub; tests point it at a local server).",
    )
    # MLflow reads these three as integers.
    request_timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        validation_alias=AliasChoices(
            "CHURN_RETRAIN_REQUEST_TIMEOUT_SECONDS", "MLFLOW_HTTP_REQUEST_TIMEOUT"
        ),
        description="Seconds to wait for each answer from the tracking server.",
    )
    request_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        validation_alias=AliasChoices(
            "CHURN_RETRAIN_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
        ),
        description="Retries of a failed request to the tracking server (MLflow's default, 7, "
        "keeps a run waiting about four minutes on a dead server).",
    )
    request_backoff_factor: int = Field(
        default=1,
        ge=0,
        le=10,
        validation_alias=AliasChoices(
            "CHURN_RETRAIN_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
        ),
        description="Exponential backoff between those retries, in seconds.",
    )

    model_name: str = Field(default="telco-churn", description="Registered model name.")
    experiment_name: str = Field(default="churn-retrain", description="MLflow experiment name.")
    mlflow_ui_url: str | None = Field(
        default=None,
        description="Base URL of the MLflow UI for links in reports; default: the tracking "
        "server, or `make mlflow-ui` (http://127.0.0.1:5000) for a store without a server "
        "(the local SQLite store, another database, a path).",
    )
    # --- the data gate and its alerts (issue 4) ---
    stream_months: bool = Field(
        default=True,
        description="Retrain on a Parquet month in passes over its source, never loaded whole "
        "(the same decision in bounded memory); false loads it whole, as a CSV is.",
    )
    max_snapshot_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Snapshots larger than this are rejected before parsing.",
    )
    download_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest one download of an http(s) snapshot may take, start to end "
        "(connect, headers, body); each connect and read also waits at most 30 s. A slower "
        "download is retried twice, then the run ends with SnapshotUnavailable (exit 6).",
    )
    alert_url: SecretStr | None = Field(
        default=None,
        description="Where failure alerts go: an http(s) webhook (JSON POST; Slack-compatible "
        "`text` field) or an Apprise URL such as mailto://. Secret: never logged.",
    )
    alert_block: str | None = Field(
        default=None,
        description="Saved Prefect notification block for failure alerts, as TYPE/NAME "
        "(e.g. slack-webhook/churn-alerts, custom-webhook/churn-alerts).",
    )
    alert_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one alert delivery attempt."
    )
    alert_retries: int = Field(
        default=2, ge=0, le=5, description="Extra delivery attempts after a failed one."
    )
    notify_decisions: bool = Field(
        default=False,
        description="Also send a message for every decision (a promotion, a kept champion, a "
        "rollback) through the alert destination; off: only failures and decay are sent.",
    )

    @model_validator(mode="after")
    def _credentials_out_of_uris(self) -> Self:
        """Move `user:password@` out of http(s) URIs, so no error message or tag can carry them.

        MLflow's HTTP errors quote the URL they called. Database URIs keep their credentials:
        SQLAlchemy needs them there (and `redact_uri` hides them).
        """
        for field in ("tracking_uri", "registry_uri"):
            uri = getattr(self, field)
            if not uri:
                continue
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
                continue
            if self.tracking_username is None and parts.username:
                self.tracking_username = unquote(parts.username)
            if self.tracking_password is None and parts.password:
                self.tracking_password = SecretStr(unquote(parts.password))
            netloc = parts.netloc.rpartition("@")[2]
            setattr(self, field, urlunsplit(parts._replace(netloc=netloc)))
        return self

    @property
    def uses_dagshub(self) -> bool:
        """True when a DagsHub owner or repository is configured."""
        return bool(self.dagshub_owner or self.dagshub_repo)

    @property
    def dagshub_tracking_uri(self) -> str:
        """DagsHub's MLflow endpoint for the repository (what `dagshub.init` would set)."""
        return f"{self.dagshub_host.rstrip('/')}/{self.dagshub_owner}/{self.dagshub_repo}.mlflow"

    @property
    def is_local(self) -> bool:
        """True when tracking uses the embedded SQLite store under `home`."""
        return self.tracking_uri is None and not self.uses_dagshub

    @property
    def has_tracking_server(self) -> bool:
        """True when MLflow talks to a server (http(s), DagsHub); False for a store it writes
        itself: the local SQLite store, a `sqlite:///` or other database URI, a path, `file://`.

        Without a server, artifacts go where the experiment says, and an experiment created
        without a location would say `./mlruns` of whatever directory the first run started
        in: `configure_tracking` gives those experiments `artifact_root` instead.
        """
        return not is_serverless_uri(self.resolved_tracking_uri)

    @property
    def local_store_uri(self) -> str:
        """The embedded SQLite store under `home` (what `make mlflow-ui` opens)."""
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def resolved_tracking_uri(self) -> str:
        if self.uses_dagshub:
            return self.dagshub_tracking_uri
        return self.tracking_uri or self.local_store_uri

    @property
    def resolved_registry_uri(self) -> str:
        return self.registry_uri or self.resolved_tracking_uri

    @property
    def ui_url(self) -> str:
        """Where a person opens the MLflow UI (no credentials). A store without a server has
        no web address of its own: the local UI's (`make mlflow-ui`, `mlflow ui`), never the
        store's URI."""
        if self.mlflow_ui_url:
            return self.mlflow_ui_url.rstrip("/")
        if not self.has_tracking_server:
            return LOCAL_UI_URL
        return redact_uri(self.resolved_tracking_uri)

    @property
    def artifact_root(self) -> Path:
        """Artifacts of the experiments this project creates on a store without a server."""
        return self.home / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def is_serverless_uri(uri: str) -> bool:
    """True for a tracking URI MLflow writes itself (a database, a path, `file://`), False for
    a server (http(s), DagsHub, Databricks)."""
    return urlsplit(uri).scheme.partition("+")[0].lower() in _SERVERLESS_SCHEMES


def ui_command(tracking_uri: str) -> str:
    """The command that serves a store without a server on `LOCAL_UI_URL` (redacted URI)."""
    return f"mlflow ui --backend-store-uri {shlex.quote(redact_uri(tracking_uri))}"


def redact_uri(uri: str) -> str:
    """A URI fit for logs and tags: no user, password, query or fragment."""
    parts = urlsplit(uri)
    if not parts.netloc:  # local paths, sqlite:///, file:/// carry no credentials
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_endpoint(uri: str) -> str:
    """Scheme and host only, for webhooks: their path and query are the secret (e.g. Slack's)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…" if parts.scheme else "(alert destination)"
