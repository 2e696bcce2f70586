"""One promotion per model and period: re-running a month can retrain, never promote twice."""

from __future__ import annotations

from mlflow.tracking import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.evaluation import Decision

IDEMPOTENCY_TAG = "idempotency_key"
PROMOTED_TAG = "promoted"


def idempotency_key(model_name: str, period: str) -> str:
    """The key every run of `model_name` for `period` shares."""
    return f"{model_name}:{period}"


def hold_if_already_promoted(decision: Decision, promoted_version: str | None) -> Decision:
    """Turn a promotion into `already-promoted` when the period already promoted a version."""
    if not decision.promote or promoted_version is None:
        return decision
    return decision.model_copy(
        update={
            "verdict": "already-promoted",
            "promote": False,
            "reason": f"version {promoted_version} was already promoted for this period "
            f"(would have been: {decision.reason})",
        }
    )


@task(name="find-period-promotion", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def find_period_promotion(model_name: str, key: str) -> str | None:
    """The version already promoted under `key`, if any."""
    versions = MlflowClient().search_model_versions(
        f"name = '{model_name}' and tags.{IDEMPOTENCY_TAG} = '{key}'"
    )
    promoted = [v for v in versions if v.tags.get(PROMOTED_TAG) == "true"]
    return str(min(int(v.version) for v in promoted)) if promoted else None
