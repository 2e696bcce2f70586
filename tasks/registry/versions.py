"""Registered versions: registration, their tags, and the period a promotion is for."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from tasks.registry.aliases import CHALLENGER
from tasks.steps import retried_step

IDEMPOTENCY_TAG = "idempotency_key"
PROMOTED_TAG = "promoted"
#: The rule's campaign (capacity, save rate, cost, value) as JSON: `score` flags its list.
CAMPAIGN_TAG = "campaign"


def idempotency_key(model_name: str, period: str) -> str:
    """The key every run of `model_name` for `period` shares."""
    return f"{model_name}:{period}"


@retried_step("find-period-promotion")
def find_period_promotion(model_name: str, key: str) -> str | None:
    """The version already promoted under `key`, if any."""
    versions = MlflowClient().search_model_versions(
        f"name = '{model_name}' and tags.{IDEMPOTENCY_TAG} = '{key}'"
    )
    promoted = [v for v in versions if v.tags.get(PROMOTED_TAG) == "true"]
    return str(min(int(v.version) for v in promoted)) if promoted else None


@retried_step("register-challenger")  # retry-safe: a version this run registered is reused
def register_challenger(
    model_uri: str,
    name: str,
    *,
    run_id: str,
    period: str,
    verdict: str,
    training_ids_digest: str,
    data_digest: str | None = None,
    key: str | None = None,
    campaign: str | None = None,
) -> str:
    """Register the challenger's model as a new version, tagged with its verdict from birth.

    It is registered as not promoted (`promoted=false`); only a completed promotion flips it.
    `key` is the period's `idempotency_key`; `campaign` the rule's campaign as JSON, which
    scoring reads back when this version is champion. A run registers one challenger: if a version from
    `run_id` exists already (a retry after the registry created it but the answer was lost),
    that version is returned, not a second one.
    """
    existing = run_version(MlflowClient(), name, run_id)
    if existing is not None:
        return existing
    tags = {
        "verdict": verdict,
        "period": period,
        "data.digest": data_digest,
        IDEMPOTENCY_TAG: key,
        PROMOTED_TAG: "false",
        "training_ids.digest": training_ids_digest,
        CAMPAIGN_TAG: campaign,
    }
    set_tags = {k: v for k, v in tags.items() if v is not None}
    return str(mlflow.register_model(model_uri, name, tags=set_tags).version)


def run_version(client: MlflowClient, name: str, run_id: str) -> str | None:
    """The version of `name` registered from `run_id`, if any (the first, if several)."""
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return str(min(int(v.version) for v in versions)) if versions else None


def mark_version(client: MlflowClient, name: str, version: str, *, verdict: str) -> None:
    client.set_model_version_tag(name, version, "verdict", verdict)
    client.set_model_version_tag(name, version, PROMOTED_TAG, "false")
    client.set_registered_model_alias(name, CHALLENGER, version)


@retried_step("mark-not-promoted")
def mark_not_promoted(name: str, version: str, *, verdict: str) -> None:
    """Tag the version with its verdict and point the `challenger` alias at it."""
    mark_version(MlflowClient(), name, version, verdict=verdict)
