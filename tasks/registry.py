"""The MLflow model registry: find the champion, register challengers, move aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import task

from tasks.idempotency import PROMOTED_TAG
from tasks.model import keep_pycaret_quiet

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"


class PromotionConflict(RuntimeError):
    """The champion alias moved between the comparison and the promotion."""


@dataclass(frozen=True)
class ChampionRef:
    """Which registered version holds the `champion` alias."""

    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{CHAMPION}"


def _is_missing(exc: MlflowException) -> bool:
    return (
        exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        or "not found" in str(exc).lower()
    )


def champion_version(client: MlflowClient, name: str) -> str | None:
    """The version number `champion` points at, or None with no model or no alias."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        # MLflow's basic-auth server answers 403, not 404, for a model that does not exist yet
        # (a non-admin may not learn which names exist): before the first registration.
        if exc.error_code == "PERMISSION_DENIED" and not _model_exists(client, name):
            return None
        raise


def _model_exists(client: MlflowClient, name: str) -> bool:
    return bool(client.search_registered_models(filter_string=f"name='{name}'", max_results=1))


@task(name="find-champion", retries=2, retry_delay_seconds=3)
def find_champion(name: str) -> ChampionRef | None:
    """The current champion, or None before the first promotion."""
    client = MlflowClient()
    version = champion_version(client, name)
    if version is None:
        return None
    return ChampionRef(
        name=name, version=version, run_id=client.get_model_version(name, version).run_id
    )


@task(name="load-champion", retries=2, retry_delay_seconds=3)
def load_champion(champion: ChampionRef) -> Any:
    """The champion as a pyfunc, pinned to the version found (not whatever the alias says now)."""
    import mlflow.pyfunc

    keep_pycaret_quiet()
    return mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")


@task(name="register-challenger", retries=2, retry_delay_seconds=3)
def register_challenger(model_uri: str, name: str, *, tags: dict[str, str]) -> str:
    """Register the challenger's model as a new version, tagged with its verdict from birth."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags=tags)
    return str(version.version)


@task(name="promote-challenger", retries=2, retry_delay_seconds=3)
def promote_challenger(name: str, version: str, *, expected_champion: str | None) -> str | None:
    """Move `champion` to `version`; the old champion stays reachable as `previous-champion`.

    Refuses if the champion is no longer the one the challenger was compared with. Returns the
    version that was champion before.
    """
    client = MlflowClient()
    current = champion_version(client, name)
    if current != expected_champion:
        raise PromotionConflict(
            f"champion of {name!r} is now version {current}, not {expected_champion} as when "
            f"compared; not promoting version {version}"
        )
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, PROMOTED_TAG, "true")
    return current
