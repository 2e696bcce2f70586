"""The month as MLflow lineage: the run's training and holdout datasets (the Datasets column of
the runs table) and the logged model's metrics tied to them (its "Datasets used").

A dataset carries the month's location (redacted), digest and row count, and the columns'
schema; never a row: `mlflow.data.from_pandas` keeps a schema and a profile (row count), and
nothing is uploaded."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

from tasks.data.schema import TARGET
from tasks.settings import redact_uri

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

#: The input tag `mlflow.log_input(..., context=...)` sets, which the UI shows beside a dataset.
CONTEXT_TAG = "mlflow.data.context"
TRAINING = "training"
HOLDOUT = "holdout"
#: MLflow's limit on a dataset digest (ours is `sha256:` and 32 hex digits: the hex is kept).
_DIGEST_LIMIT = 36


@dataclass(frozen=True)
class Month:
    """What a retrain run's params and tags say of its month."""

    period: str
    source: str  # redacted
    digest: str  # the snapshot's, `sha256:...`
    rows: int

    @classmethod
    def of_run(cls, run: Run) -> Month | None:
        """The month of a retrain run (`open_run` records it); None for another kind of run."""
        params, tags = run.data.params, run.data.tags
        try:
            return cls(
                period=params["period"],
                source=redact_uri(params["data.source"]),
                digest=tags["data.digest"],
                rows=int(params["data.rows"]),
            )
        except (KeyError, ValueError):
            return None

    def dataset_name(self, context: str) -> str:
        return f"{self.period}-{context}"

    @property
    def dataset_digest(self) -> str:
        """The month's digest as MLflow stores it (the hex part, the same the record shows)."""
        return self.digest.removeprefix("sha256:")[:_DIGEST_LIMIT]

    def input_tags(self, context: str) -> list[InputTag]:
        return [
            InputTag(CONTEXT_TAG, context),
            InputTag("data.digest", self.digest),
            InputTag("data.rows", str(self.rows)),
            InputTag("period", self.period),
        ]


def training_dataset(month: Month, frame: pd.DataFrame) -> Dataset:
    """The training rows' dataset: the month's name, digest and source, their schema and count.

    The source is the month's location as MLflow resolves it (a path, an s3/gs URI, a URL); a
    generated month or a database, which MLflow has no source type for, is a code source naming
    the location."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas  # `mlflow.data.from_pandas`
    from mlflow.exceptions import MlflowException

    def of(source: str | CodeDatasetSource) -> Dataset:
        dataset = from_pandas(
            frame,
            source=source,
            targets=TARGET if TARGET in frame else None,
            name=month.dataset_name(TRAINING),
            digest=month.dataset_digest,
        )
        return Dataset(**dataset.to_dict())

    with warnings.catch_warnings():  # the hint about integer columns that may hold nulls
        warnings.simplefilter("ignore", UserWarning)
        try:
            return of(month.source)
        except MlflowException:  # no resolver for this kind of location
            return of(CodeDatasetSource({"location": month.source}))


def holdout_dataset(month: Month, training: Dataset, rows: int) -> Dataset:
    """The holdout's dataset: the training dataset's source and schema (the same month's
    columns), its own name and row count."""
    return Dataset(
        name=month.dataset_name(HOLDOUT),
        digest=month.dataset_digest,
        source_type=training.source_type,
        source=training.source,
        schema=training.schema,
        profile=json.dumps({"num_rows": rows}),
    )


def log_training_dataset(client: MlflowClient, run_id: str, frame: pd.DataFrame) -> None:
    """Log `frame` (the challenger's training rows) as the run's training dataset; nothing for a
    run that records no month. Repeating it adds nothing (MLflow keeps one link per dataset)."""
    month = Month.of_run(client.get_run(run_id))
    if month is None:
        return
    dataset = training_dataset(month, frame)
    client.log_inputs(run_id, [DatasetInput(dataset, month.input_tags(TRAINING))])


def run_dataset(run: Run, context: str) -> Dataset | None:
    """The run's dataset logged for `context`, if any."""
    for item in run.inputs.dataset_inputs if run.inputs else ():
        if any(t.key == CONTEXT_TAG and t.value == context for t in item.tags):
            return item.dataset
    return None


def with_dataset(metrics: list[Metric], dataset: Dataset | None) -> list[Metric]:
    """`metrics` tied to `dataset` (unchanged without one): a model logged after them lists it."""
    if dataset is None:
        return metrics
    return [
        Metric(
            m.key,
            m.value,
            m.timestamp,
            m.step,
            model_id=m.model_id,
            dataset_name=dataset.name,
            dataset_digest=dataset.digest,
        )
        for m in metrics
    ]


def log_holdout_lineage(
    client: MlflowClient,
    run_id: str,
    *,
    model_id: str | None,
    holdout_rows: int,
    scores: dict[str, float],
) -> Dataset | None:
    """Log the run's holdout dataset (beside its training one) and the challenger's holdout
    `scores` as metrics of its logged model `model_id` tied to it; the holdout dataset, or None
    for a run without a training dataset. Each metric is the run's `holdout_*` metric as the
    decision record logs it (same time and step), so the run keeps one value per metric."""
    run = client.get_run(run_id)
    month, training = Month.of_run(run), run_dataset(run, TRAINING)
    if month is None or training is None:
        return None
    holdout = holdout_dataset(month, training, holdout_rows)
    client.log_inputs(run_id, [DatasetInput(holdout, month.input_tags(HOLDOUT))])
    if model_id is not None and scores:
        metrics = [Metric(f"holdout_{k}", v, 0, 0, model_id=model_id) for k, v in scores.items()]
        client.log_batch(run_id, metrics=with_dataset(metrics, holdout))
    return holdout
