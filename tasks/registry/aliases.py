"""Registry aliases: which version is the champion, read and moved through MLflow's public client."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.steps import retried_step

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"
#: The latest registered version that was not promoted.
CHALLENGER = "challenger"


@dataclass(frozen=True)
class ChampionRef:
    """Which registered version holds the `champion` alias."""

    name: str
    version: str
    run_id: str | None


def is_missing(exc: MlflowException) -> bool:
    return (
        exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        or "not found" in str(exc).lower()
    )


def champion_version(client: MlflowClient, name: str) -> str | None:
    """The version number `champion` points at, or None with no model or no alias."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if is_missing(exc):
            return None
        # MLflow's basic-auth server answers 403, not 404, for a model that does not exist yet
        # (a non-admin may not learn which names exist): before the first registration.
        if exc.error_code == "PERMISSION_DENIED" and not _model_exists(client, name):
            return None
        raise


def _model_exists(client: MlflowClient, name: str) -> bool:
    return bool(client.search_registered_models(filter_string=f"name='{name}'", max_results=1))


@retried_step("find-champion")
def find_champion(name: str) -> ChampionRef | None:
    """The current champion, or None before the first promotion."""
    client = MlflowClient()
    version = champion_version(client, name)
    if version is None:
        return None
    return ChampionRef(
        name=name, version=version, run_id=client.get_model_version(name, version).run_id
    )


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version `alias` points at, or None."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def set_alias(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    """Point `alias` at `version`, or remove it for None."""
    if version is None:
        try:
            client.delete_registered_model_alias(name, alias)
        except MlflowException as exc:
            if not is_missing(exc):
                raise
    else:
        client.set_registered_model_alias(name, alias, version)
