"""Shared fixtures: isolated state per test, one Prefect test server per session, the real CSV."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

REAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "telco_customer_churn.csv"

# Before anything imports GX: no usage statistics from tests (there is no internet here anyway).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


#: Remote-tracking settings a developer may have exported: tests never send anything there.
REMOTE_TRACKING_VARS = (
    "CHURN_RETRAIN_REGISTRY_URI",
    "CHURN_RETRAIN_TRACKING_USERNAME",
    "CHURN_RETRAIN_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "CHURN_RETRAIN_DAGSHUB_OWNER",
    "CHURN_RETRAIN_DAGSHUB_REPO",
    "CHURN_RETRAIN_DAGSHUB_TOKEN",
    "CHURN_RETRAIN_DAGSHUB_TOKEN_BLOCK",
    "CHURN_RETRAIN_DAGSHUB_HOST",
    "DAGSHUB_USER_TOKEN",
    "DAGSHUB_CLIENT_HOST",
    # What a run exports for MLflow's HTTP client; a later test must read its own settings.
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


#: Fixtures that make a test slow (a Prefect server, training on the real CSV): such a test is
#: marked `slow` whether or not it says so, so `make test-fast` stays fast.
_SLOW_FIXTURES = frozenset({"prefect_server", "real_csv", "real_frame"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh CHURN_RETRAIN_HOME with local MLflow; no remote tracking leaks in from the env.

    Neither does a developer's `.env` (it may hold DagsHub credentials), and the MLflow
    variables a run sets for its connection do not leak out into later tests.
    """
    from tasks.settings import Settings

    home = tmp_path / "state"
    monkeypatch.setenv("CHURN_RETRAIN_HOME", str(home))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CHURN_RETRAIN_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    for name in REMOTE_TRACKING_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    saved = dict(os.environ)
    yield home
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect API for the whole session (starting one costs ~6 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.is_file():
        pytest.fail(f"the real Telco CSV is expected at {REAL_CSV} (../shared/data)")
    return REAL_CSV


@pytest.fixture(scope="session")
def real_frame(real_csv: Path) -> pd.DataFrame:
    from tasks.data.parse import parse_snapshot

    return parse_snapshot(real_csv.read_bytes(), source=str(real_csv))
