"""Where state lives and which MLflow to talk to: one typed place, read from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    model_name: str = Field(default="telco-churn", description="Registered model name.")
    experiment_name: str = Field(default="churn-retrain", description="MLflow experiment name.")
    mlflow_ui_url: str | None = Field(
        default=None,
        description="Base URL of the MLflow UI for links in reports; default: the tracking "
        "server, or `make mlflow-ui` (http://127.0.0.1:5000) for the local store.",
    )
    # --- the data gate and its alerts (issue 4) ---
    max_snapshot_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Snapshots larger than this are rejected before parsing.",
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

    @property
    def is_local(self) -> bool:
        """True when tracking uses the embedded SQLite store under `home`."""
        return self.tracking_uri is None

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def resolved_registry_uri(self) -> str:
        return self.registry_uri or self.resolved_tracking_uri

    @property
    def ui_url(self) -> str:
        """Where a person opens the MLflow UI (no credentials)."""
        if self.mlflow_ui_url:
            return self.mlflow_ui_url.rstrip("/")
        return "http://127.0.0.1:5000" if self.is_local else redact_uri(self.resolved_tracking_uri)

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def redact_uri(uri: str) -> str:
    """A URI fit for logs and tags: no user, password, query or fragment."""
    parts = urlsplit(uri)
    if not parts.netloc:  # local paths, sqlite:///, file:/// carry no credentials
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
