"""MLflow runs of a retrain: the experiment, opening and finishing a run."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import mlflow
from mlflow.entities import Experiment
from mlflow.tracking import MlflowClient

from tasks.errors import TrackingUnavailable, unreachable_reason
from tasks.runtime.flow_run import flow_run_url
from tasks.runtime.owner import Owner
from tasks.settings import Settings, redact_uri
from tasks.steps import retried_step, step
from tasks.target import ModelTarget
from tasks.tracking.check import check_tracking as check_tracking
from tasks.tracking.connection import connect_tracking

if TYPE_CHECKING:
    from tasks.decision.rule import DecisionRule

#: The run tag naming the process that opened the run (tasks/runtime/owner.py).
OWNER_TAG = "churn-retrain.owner"
#: Set on a run another process found RUNNING with its owner gone, and marked FAILED.
INTERRUPTED_TAG = "churn-retrain.interrupted"


def tracking_lost(exc: BaseException, *, run_id: str) -> TrackingUnavailable | None:
    """A clear error for a server that went away mid-run, or None for any other failure."""
    import mlflow

    reason = unreachable_reason(exc)
    if reason is None:
        return None
    return TrackingUnavailable(
        f"MLflow server {redact_uri(mlflow.get_tracking_uri())} went away during the run: "
        f"{reason}. The run stopped at that step; nothing after it happened (MLflow run "
        f"{run_id} may still show RUNNING). Rerun when the server is back."
    )


@dataclass(frozen=True)
class Tracking:
    """Where this run's records go (URIs redacted: they may carry credentials)."""

    experiment_id: str
    tracking_uri: str
    model_name: str
    ui_url: str

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def version_url(self, version: str) -> str:
        return f"{self.ui_url}/#/models/{self.model_name}/versions/{version}"


@retried_step("configure-tracking")  # get-or-create: a retry finds what a lost answer made
def configure_tracking(settings: Settings, target: ModelTarget | None = None) -> Tracking:
    """Connect (`connect_tracking`) and make sure the target's experiment exists (no target:
    the environment's default model, for commands that name none)."""
    target = (target or ModelTarget()).resolve(settings)
    if settings.is_local:
        settings.home.mkdir(parents=True, exist_ok=True)
    connect_tracking(settings)  # URIs, credentials, bounded HTTP retries (idempotent)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(target.experiment_name)
    if experiment is None:
        # A store without a server (the local SQLite, a sqlite:/// URI elsewhere, a path) keeps
        # artifacts under `home`, not in ./mlruns of whatever directory the first run ran in.
        # A server decides for itself (its --default-artifact-root, DagsHub's storage).
        location = None if settings.has_tracking_server else settings.artifact_root.as_uri()
        experiment_id = client.create_experiment(target.experiment_name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
        if not settings.has_tracking_server:  # a server's paths are the server's, not ours
            warn_lost_artifacts(client, experiment)
        fail_interrupted_runs(client, experiment_id)
    return Tracking(
        experiment_id=experiment_id,
        tracking_uri=redact_uri(settings.resolved_tracking_uri),
        model_name=target.model,
        ui_url=settings.ui_url,
    )


def local_artifact_directory(location: str) -> Path | None:
    """The directory of a local artifact location (`file://` URI or plain path), else None."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    return Path(location) if not parts.scheme else None


def warn_lost_artifacts(client: MlflowClient, experiment: Experiment) -> Path | None:
    """Warn when the experiment's local artifact directory is gone while it has finished runs;
    the missing directory, else None.

    An experiment created by an older version on a `sqlite:///` URI kept its artifacts in
    `./mlruns` of the directory its first run started in: when that directory is deleted, its
    registered models are gone (`No such artifact`), and MLflow cannot move an experiment's
    artifact location. A finished run always logged artifacts, so a missing directory then
    means they were lost (a new experiment's directory only appears with its first artifact).
    """
    directory = local_artifact_directory(experiment.artifact_location or "")
    if directory is None or directory.exists():
        return None
    finished = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'FINISHED'", max_results=1
    )
    if not finished:
        return None
    _warn(
        f"MLflow experiment {experiment.name!r} keeps its artifacts in {directory}, which no "
        "longer exists: the models and files its runs logged there are gone (a champion "
        "registered from them will not load), and new runs would write there again. Restore "
        "that directory, or retrain into a new experiment (--model.experiment NAME, or "
        "CHURN_RETRAIN_EXPERIMENT_NAME), created with its artifacts under the state directory."
    )
    return directory


def fail_interrupted_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark FAILED the experiment's RUNNING runs whose owner is gone; their ids.

    A run killed with SIGKILL (or a lost machine) cannot mark itself: its MLflow run would
    show RUNNING for good. Its owner tag (`open_run`) says which process opened it; when that
    process is gone for sure (`Owner.is_gone`: same host, and the pid is dead or reused, or the
    host rebooted), the run is interrupted. A run of a live process, of another host, or
    without the tag is left alone. Each one marked is said as a warning.
    """
    marked = []
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=200
    )
    for run in running:
        owner = Owner.parse(run.data.tags.get(OWNER_TAG, ""))
        if owner is None or not owner.is_gone():
            continue
        why = f"its process ({owner.describe()}) ended without finishing it"
        client.set_tag(run.info.run_id, INTERRUPTED_TAG, why)
        client.set_terminated(run.info.run_id, "FAILED")
        marked.append(run.info.run_id)
        _warn(
            f"MLflow run {run.info.run_id} ({run.info.run_name}) was left RUNNING: {why}; "
            "marked it FAILED"
        )
    return marked


def _warn(message: str) -> None:
    """A warning in the run's log, or on stderr outside a run (the status command, a CLI
    preparing its store before the flow starts)."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().warning(message)
    except MissingContextError:
        print(f"churn-retrain: {message}", file=sys.stderr)


@dataclass(frozen=True)
class RunRef:
    """This retrain: where its records go, its month, its rule and seed, its Prefect flow run."""

    tracking: Tracking
    run_id: str
    period: str
    key: str  # the period's idempotency key
    rule: DecisionRule
    seed: int
    flow_run_id: str
    flow_run_name: str
    flow_run_url: str | None

    @classmethod
    def in_this_flow_run(
        cls, tracking: Tracking, run_id: str, period: str, rule: DecisionRule, seed: int
    ) -> RunRef:
        """The run of `tracking`'s model for `period`, opened by the running flow run."""
        from prefect import runtime

        from tasks.registry.versions import idempotency_key

        flow_run_id = str(runtime.flow_run.id)
        key = idempotency_key(tracking.model_name, period)
        name = str(runtime.flow_run.name)
        url = flow_run_url(flow_run_id)
        return cls(tracking, run_id, period, key, rule, seed, flow_run_id, name, url)

    @property
    def model(self) -> str:
        return self.tracking.model_name

    @property
    def run_url(self) -> str:
        return self.tracking.run_url(self.run_id)


@step("open-run")  # never retried: a retry after a lost answer would make a second run
def open_run(
    tracking: Tracking, *, run_name: str, params: dict[str, Any], tags: dict[str, str]
) -> str:
    """Start the MLflow run that holds this retrain's records; returns its id."""
    client = MlflowClient()
    tags = {**tags, OWNER_TAG: Owner.current().text()}
    run = client.create_run(tracking.experiment_id, run_name=run_name, tags=tags)
    client.log_batch(
        run.info.run_id,
        params=[mlflow.entities.Param(k, param_text(v)) for k, v in sorted(params.items())],
    )
    return str(run.info.run_id)


@contextmanager
def finishing_run(run_id: str) -> Iterator[None]:
    """Mark the MLflow run FINISHED when the block completes, FAILED when it raises, KILLED
    when it is interrupted (SIGTERM, which the CLI turns into SystemExit, or Ctrl-C).

    A tracking server that went away mid-run becomes `TrackingUnavailable` saying so (rather
    than the HTTP client's traceback); the run cannot be marked FAILED then, which is said too.
    """
    try:
        yield
    except BaseException as exc:
        try:
            MlflowClient().set_terminated(
                run_id, "FAILED" if isinstance(exc, Exception) else "KILLED"
            )
        except Exception as marking:
            if lost := tracking_lost(exc, run_id=run_id) or tracking_lost(marking, run_id=run_id):
                raise lost from exc
            raise
        if isinstance(exc, Exception) and (lost := tracking_lost(exc, run_id=run_id)):
            raise lost from exc
        raise
    try:
        MlflowClient().set_terminated(run_id, "FINISHED")
    except Exception as exc:
        if lost := tracking_lost(exc, run_id=run_id):
            raise lost from exc
        raise


def param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's param value limit
