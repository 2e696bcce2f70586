"""Registered versions: registration, their tags, and the period a promotion is for."""

from __future__ import annotations

from mlflow.tracking import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.registry.aliases import CHALLENGER

IDEMPOTENCY_TAG = "idempotency_key"
PROMOTED_TAG = "promoted"


def idempotency_key(model_name: str, period: str) -> str:
    """The key every run of `model_name` for `period` shares."""
    return f"{model_name}:{period}"


@task(name="find-period-promotion", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def find_period_promotion(model_name: str, key: str) -> str | None:
    """The version already promoted under `key`, if any."""
    versions = MlflowClient().search_model_versions(
        f"name = '{model_name}' and tags.{IDEMPOTENCY_TAG} = '{key}'"
    )
    promoted = [v for v in versions if v.tags.get(PROMOTED_TAG) == "true"]
    return str(min(int(v.version) for v in promoted)) if promoted else None


@task(name="register-challenger", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def register_challenger(model_uri: str, name: str, *, tags: dict[str, str]) -> str:
    """Register the challenger's model as a new version, tagged with its verdict from birth.

    It is registered as not promoted (`promoted=false`); only a completed promotion flips it.
    """
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={**tags, "promoted": "false"})
    return str(version.version)


def mark_version(client: MlflowClient, name: str, version: str, *, verdict: str) -> None:
    client.set_model_version_tag(name, version, "verdict", verdict)
    client.set_model_version_tag(name, version, "promoted", "false")
    client.set_registered_model_alias(name, CHALLENGER, version)


@task(name="mark-not-promoted", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def mark_not_promoted(name: str, version: str, *, verdict: str) -> None:
    """Tag the version with its verdict and point the `challenger` alias at it."""
    mark_version(MlflowClient(), name, version, verdict=verdict)
