"""Find and load the champion, or say why it cannot be used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.errors import is_transient
from tasks.registry.aliases import ChampionRef, champion_version, is_missing
from tasks.registry.history import read_history
from tasks.training.model import keep_pycaret_quiet


@task(name="find-missing-champion", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def find_missing_champion(name: str) -> str | None:
    """With no `champion` alias: why, if the history says there was one (None if never)."""
    client = MlflowClient()
    history = read_history(client, name)
    if not history or champion_version(client, name) is not None:
        return None
    last = history[-1].to_version
    try:
        client.get_model_version(name, last)
    except MlflowException as exc:
        if is_missing(exc):
            return f"champion v{last} (last in the promotion history) was deleted from the registry"
        raise
    return f"the champion alias was removed from v{last} (last in the promotion history)"


@dataclass(frozen=True)
class LoadedChampion:
    """The champion's model, or why it could not be loaded."""

    model: Any | None
    problem: str | None = None


@task(
    name="load-champion",
    retries=2,
    retry_delay_seconds=3,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def load_champion(champion: ChampionRef) -> LoadedChampion:
    """The champion as a pyfunc, pinned to the version found (not whatever the alias says now).

    An artifact that will not load is a named outcome, not a crash: the decision record says
    what happened and the rule decides what to do about it.
    """
    import mlflow.pyfunc

    keep_pycaret_quiet()
    try:
        model = mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")
    except Exception as exc:
        if is_unreachable(exc):
            raise
        try:  # a registry that does not answer is an outage, not a broken champion
            MlflowClient().get_model_version(champion.name, champion.version)
        except Exception:
            raise exc from None
        return LoadedChampion(None, f"champion v{champion.version} will not load: {_brief(exc)}")
    return LoadedChampion(model)


def is_unreachable(exc: BaseException) -> bool:
    """Network trouble (retry or fail the run), as opposed to a broken artifact."""
    import requests

    return isinstance(exc, ConnectionError | TimeoutError | requests.RequestException)


def _brief(exc: BaseException) -> str:
    """An exception as one short line (type and first line of the message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
