"""A replay: re-derive a past month's decision from what its record holds, in a scratch registry.

`find_stored_month` reads the month's decision record and run parameters from the real store
(reads only); `copy_champion` exports the champion that month was compared with (its model,
its run's artifacts, metrics and tags, its version's tags) and `import_champion` registers it
in the scratch store under the same version number; `replay_parameters` rebuilds the retrain's
parameters; `compare_records` names every difference between the stored and the new record,
timings and ids apart.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.errors import UsageError

#: What differs between two runs of the same decision by nature: where and when they ran.
_IGNORED = frozenset(
    {
        "mlflow_run_id",
        "mlflow_run_url",
        "champion_url",
        "tracking_uri",
        "flow_run_id",
        "decided_at",
        "stage_seconds",
        "challenger.run_id",
        "champion.run_id",
        "code_version",  # compared on its own, with its own message
        "promotion.event.at",
        "promotion.event.by",
        "promotion.event.seq",
        "promotion.event.flow_run",
        "promotion.event.decision_run",
    }
)
#: Run parameters that are nested models of the retrain's parameters (`rule.floor`, ...).
_NESTED = ("rule", "approval", "model", "source")


class Difference(BaseModel):
    """One field of the record that came out otherwise, and what that means when known."""

    model_config = ConfigDict(frozen=True)

    path: str
    stored: Any
    replayed: Any
    meaning: str | None = None

    def text(self) -> str:
        said = f"{self.path}: stored {self.stored!r}, replayed {self.replayed!r}"
        return f"{said} ({self.meaning})" if self.meaning else said


@dataclass(frozen=True)
class StoredMonth:
    """The month as the real store holds it: its record, run parameters and the run's id."""

    record: dict[str, Any]
    params: Mapping[str, str]
    run_id: str


@dataclass(frozen=True)
class ChampionCopy:
    """What the retrain reads of a champion, exported from the real store into `folder`."""

    version: str
    folder: Path
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    version_tags: Mapping[str, str] = field(default_factory=dict)


def find_stored_month(experiment_name: str, period: str) -> StoredMonth:
    """The latest FINISHED retrain run of `period` with a verdict, and its decision record."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from tasks.report.publish import DECISION_ARTIFACT

    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    runs = (
        []
        if experiment is None
        else client.search_runs(
            [experiment.experiment_id],
            filter_string=f"attributes.status = 'FINISHED' and tags.`data.period` = '{period}'",
            order_by=["attributes.start_time DESC"],
            max_results=50,
        )
    )
    decided = [r for r in runs if r.data.tags.get("decision.verdict")]
    if not decided:
        raise UsageError(
            f"no decided month {period} in experiment {experiment_name!r}: nothing to replay "
            "(`churn-retrain status` lists the history)"
        )
    run = decided[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path=DECISION_ARTIFACT, dst_path=tmp
        )
        record = json.loads(Path(path).read_text())
    return StoredMonth(record=record, params=dict(run.data.params), run_id=run.info.run_id)


def _value(text: str) -> Any:
    """A run parameter back to its value: JSON when it was logged as JSON, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def replay_parameters(stored: StoredMonth) -> dict[str, Any]:
    """The retrain's parameters of the stored month, from its run's parameters and record.

    The data is the month's own location as it was read (`data.source`); approval is not asked
    for again (a replay has no person to ask); the promotion lock is created in the scratch
    Prefect server.
    """
    from flows.parameters import RetrainParameters

    values: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {name: {} for name in _NESTED}
    for key, text in stored.params.items():
        head, _, rest = key.partition(".")
        if head in nested and rest:
            nested[head][rest] = _value(text)
        elif key in RetrainParameters.model_fields and key not in _NESTED:
            values[key] = _value(text)
    source = str(stored.record["data_source"])
    values["data"] = "generated" if source.startswith("generated:") else source
    values["period"] = stored.record["period"]
    nested["approval"]["required"] = False
    values["create_promotion_lock"] = True
    return {**values, **{name: given for name, given in nested.items() if given}}


def copy_champion(name: str, version: str, into: Path) -> ChampionCopy:
    """Export champion `version` of `name` from the real store (reads only)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    found = client.get_model_version(name, version)
    folder = into / f"champion-v{version}"
    model = folder / "model"
    model.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}", dst_path=str(model)
    )
    run = client.get_run(str(found.run_id))
    artifacts = folder / "run"
    artifacts.mkdir()
    if client.list_artifacts(run.info.run_id):
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(artifacts))
    return ChampionCopy(
        version=version,
        folder=folder,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        version_tags=dict(found.tags),
    )


def _model_dir(folder: Path) -> Path:
    """The folder holding the exported model's MLmodel file."""
    return next(path.parent for path in sorted(folder.rglob("MLmodel")))


def import_champion(copy: ChampionCopy, name: str, experiment_name: str) -> None:
    """Register the copy in the (scratch) store under its own version number, champion alias
    set: placeholder versions, deleted at once, take the numbers before it."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from tasks.registry.aliases import set_alias

    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None, "configure_tracking creates the experiment first"
    run = client.create_run(experiment.experiment_id, run_name=f"replayed-champion-v{copy.version}")
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, 0, 0) for k, v in copy.metrics.items()],
        params=[Param(k, v) for k, v in copy.params.items()],
        tags=[RunTag(k, v) for k, v in copy.tags.items()],
    )
    run_folder = copy.folder / "run"
    if any(run_folder.iterdir()):
        client.log_artifacts(run_id, str(run_folder))
    client.log_artifacts(run_id, str(_model_dir(copy.folder / "model")), "champion-model")
    client.set_terminated(run_id, "FINISHED")
    source = f"{client.get_run(run_id).info.artifact_uri}/champion-model"
    client.create_registered_model(name)
    while True:
        found = client.create_model_version(name, source, run_id=run_id)
        if str(found.version) == copy.version:
            break
        client.delete_model_version(name, found.version)  # only its number was wanted
    for key, value in copy.version_tags.items():
        client.set_model_version_tag(name, copy.version, key, value)
    set_alias(client, name, "champion", copy.version)


def skip_versions(name: str, up_to: int) -> None:
    """Use up version numbers below `up_to`, so the replayed challenger gets the stored one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name='{name}'"):
        client.create_registered_model(name)
    while True:
        versions = client.search_model_versions(f"name='{name}'", max_results=1000)
        latest = max((int(v.version) for v in versions), default=0)
        if latest >= up_to - 1:
            return
        found = client.create_model_version(name, "placeholder-for-a-version-number")
        client.delete_model_version(name, found.version)
        if int(found.version) >= up_to - 1:
            return


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value and any(isinstance(v, dict) for v in value):
        for index, inner in enumerate(value):
            yield from _leaves(inner, f"{path}[{index}]")
    else:
        yield path, value


def compare_records(stored: Mapping[str, Any], replayed: Mapping[str, Any]) -> list[Difference]:
    """Every field that differs, timings and ids apart, each with its meaning where known."""
    old, new = dict(_leaves(dict(stored))), dict(_leaves(dict(replayed)))
    differences = []
    for path in sorted(old.keys() | new.keys()):
        if path in _IGNORED or any(path.startswith(f"{i}.") for i in _IGNORED):
            continue
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        meaning = None
        if path == "data_digest":
            meaning = "data digest changed: the source was rewritten since the month was decided"
        elif path.startswith("approval"):
            meaning = "a person approved or rejected it then; a replay asks nobody"
        differences.append(Difference(path=path, stored=before, replayed=after, meaning=meaning))
    return differences


def describe_code(stored: Mapping[str, Any], replayed: Mapping[str, Any]) -> str | None:
    """What the code versions say, when they differ (not a difference of the decision: a
    replay with newer code that decides the same is a good sign, one that does not names it)."""
    then, now = stored.get("code_version"), replayed.get("code_version")
    if then == now:
        return None
    if not then:
        return f"the record predates code versions; replayed with {now}"
    return f"code version differs: decided by {then}, replayed with {now}"
