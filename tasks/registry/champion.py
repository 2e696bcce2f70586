"""Find and load the champion, or say why it cannot be used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.decision.campaign import Campaign
from tasks.decision.health import PromotionScore
from tasks.errors import unreachable_reason
from tasks.registry.aliases import ChampionRef, champion_version, is_missing
from tasks.registry.history import read_history
from tasks.steps import retried_step
from tasks.training.model import keep_pycaret_quiet


@retried_step("find-missing-champion")
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


@retried_step("load-champion")
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
        if unreachable_reason(exc) is not None:
            raise
        try:  # a registry that does not answer is an outage, not a broken champion
            MlflowClient().get_model_version(champion.name, champion.version)
        except Exception:
            raise exc from None
        return LoadedChampion(None, f"champion v{champion.version} will not load: {_brief(exc)}")
    return LoadedChampion(model)


def _brief(exc: BaseException) -> str:
    """An exception as one short line (type and first line of the message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


@retried_step("find-champion-campaign")
def find_champion_campaign(champion: ChampionRef) -> Campaign | None:
    """The campaign of the rule the champion was promoted under (None: it records none)."""
    from tasks.registry.versions import CAMPAIGN_TAG

    tags = MlflowClient().get_model_version(champion.name, champion.version).tags
    recorded = tags.get(CAMPAIGN_TAG)
    if recorded is None:
        return None
    try:
        return Campaign.model_validate_json(recorded)
    except ValueError:  # written by hand, or by a version that knew other fields
        return None


@retried_step("find-promotion-score")
def find_promotion_score(champion: ChampionRef | None, metric: str) -> PromotionScore | None:
    """The champion's holdout score (and interval, when recorded) from the run that promoted it."""
    if champion is None or champion.run_id is None:
        return None
    run = MlflowClient().get_run(champion.run_id)
    metrics, key = run.data.metrics, f"holdout_{metric}"
    if key not in metrics:
        return None
    return PromotionScore(
        period=run.data.tags.get("data.period"),
        estimate=metrics[key],
        lower=metrics.get(f"{key}_lower"),
        upper=metrics.get(f"{key}_upper"),
    )
