"""Writing a version's model card (its MLflow description) and its holdout lineage, around the
alias moves: before the move, so a failure leaves the old champion standing with nothing moved
(the card of a version that then does not move is restored); after it only to say a promotion
was refused, and a failure then is logged, never raised: the move stands."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from tasks.decision.record import DecisionRecord
from tasks.decision.verdict import settle
from tasks.registry.history import HistoryEvent
from tasks.registry.promotion import Promotion
from tasks.report.card import model_card, rollback_line, with_line
from tasks.report.publish import DECISION_ARTIFACT
from tasks.steps import retried_step
from tasks.tracking.lineage import log_holdout_lineage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Described:
    """A version's card as written before its move, and its description before that."""

    record: DecisionRecord
    previous: str | None


def read_record(run_id: str) -> DecisionRecord:
    """The decision record written to `run_id` (`decision.json`), as the move will leave it."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm in logs
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=DECISION_ARTIFACT, dst_path=tmp
        )
        stored = json.loads(Path(path).read_text())
    return DecisionRecord.model_validate(_without_computed(DecisionRecord, stored))


def _without_computed(model: type[BaseModel], data: Any) -> Any:
    """`data` (a model's JSON) without its computed fields (`verdict`, `sampled`, ...): they are
    written out for readers, and a model that forbids extra keys refuses them back."""
    if not isinstance(data, dict):
        return data
    kept = {}
    for key, value in data.items():
        if key in model.model_computed_fields:
            continue
        field = model.model_fields.get(key)
        nested = _model_of(field.annotation) if field is not None else None
        kept[key] = _without_computed(nested, value) if nested is not None else value
    return kept


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (directly or as `X | None`), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


# Overwrites the same description and logs the same links again: safe to repeat.
@retried_step("describe-challenger")
def describe_challenger(name: str, version: str, run_id: str) -> Described:
    """Before the move: the run's holdout dataset and the challenger's holdout scores tied to it
    and to its logged model, then the version's card from the run's decision record."""
    client = MlflowClient()
    record = read_record(run_id)
    if record.challenger.version != version:
        raise ValueError(
            f"the decision record of run {run_id} is about v{record.challenger.version} of "
            f"{record.model_name!r}, not v{version}: no card written"
        )
    current = client.get_model_version(name, version)
    log_holdout_lineage(
        client,
        run_id,
        model_id=current.model_id or _logged_model(client, run_id),
        holdout_rows=record.holdout_rows,
        scores=record.challenger.holdout,
    )
    client.update_model_version(name, version, description=model_card(record))
    return Described(record, current.description)


def _logged_model(client: MlflowClient, run_id: str) -> str | None:
    """The model the run logged (a SQL registry keeps no model id on its versions)."""
    outputs = client.get_run(run_id).outputs
    models = outputs.model_outputs if outputs else []
    return models[-1].model_id if models else None


def card_after_refusal(
    name: str, version: str, described: Described, promotion: Promotion, before: str | None
) -> None:
    """Rewrite the card of a version whose promotion was refused (the verdict `conflict`, as
    the record is rewritten); a failure is logged: nothing moved, the run goes on."""
    record = described.record
    settled = record.model_copy(
        update={
            "decision": settle(record.decision, promotion, champion_before=before),
            "promotion": promotion,
        }
    )
    try:
        MlflowClient().update_model_version(name, version, description=model_card(settled))
    except Exception as exc:
        logger.error("Could not rewrite the model card of %r v%s (%s)", name, version, exc)


def note_rollback(client: MlflowClient, name: str, event: HistoryEvent) -> str | None:
    """Append the rollback `event` (planned, not yet made) to the card of the version it
    restores; that card as it was before."""
    version = event.to_version
    previous = client.get_model_version(name, version).description
    client.update_model_version(
        name, version, description=with_line(previous, rollback_line(event))
    )
    return previous


def restore_card(client: MlflowClient, name: str, version: str, previous: str | None) -> None:
    """Put back the card a move that failed had changed; a failure is logged (the move's own
    error is what the caller raises)."""
    try:
        client.update_model_version(name, version, description=previous or "")
    except Exception as exc:
        logger.error(
            "Could not restore the model card of %r v%s after a failed move (%s): its "
            "description may describe a move that did not happen",
            name,
            version,
            exc,
        )
