"""The challenger's training customers, kept in its MLflow run as salted 64-bit hashes of their IDs
(`training_ids/`, tag `training_ids.digest`), and read back from the champion's run so the next
month's holdout avoids them (tasks/decision/holdout.py splits on them)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.data.schema import ID_COLUMN
from tasks.decision.holdout import ID_HASH_SCHEME, TrainingIds, hash_ids, id_set_digest
from tasks.errors import unreachable_reason
from tasks.steps import retried_step

TRAINING_IDS_DIR = "training_ids"
_HASHES_FILE = "hashes.npy"
_META_FILE = "meta.json"


@retried_step("log-training-ids")  # same files and tags again: safe to repeat
def log_training_ids(run_id: str, train: pd.DataFrame) -> str:
    """Store the hashed IDs of the challenger's training customers in its run, and log the rows as
    its training dataset (schema and count, no rows: `tasks/tracking/lineage.py`); returns the
    digest."""
    from mlflow.tracking import MlflowClient

    from tasks.tracking.lineage import log_training_dataset

    hashes = np.unique(hash_ids(train[ID_COLUMN]))
    digest = id_set_digest(hashes)
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / TRAINING_IDS_DIR
        folder.mkdir()
        np.save(folder / _HASHES_FILE, hashes.astype("<u8"))
        (folder / _META_FILE).write_text(
            json.dumps({"scheme": ID_HASH_SCHEME, "count": int(hashes.size), "digest": digest})
        )
        client.log_artifacts(run_id, str(folder), TRAINING_IDS_DIR)
    client.set_tag(run_id, "training_ids.digest", digest)
    client.set_tag(run_id, "training_ids.count", str(hashes.size))
    log_training_dataset(client, run_id, train)
    return digest


@retried_step("load-training-ids")
def load_training_ids(run_id: str | None) -> TrainingIds:
    """The champion's training-customer hashes, checked against their digest."""
    import mlflow

    if run_id is None:
        return TrainingIds(None, None, "the champion has no MLflow run")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm in logs
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=TRAINING_IDS_DIR, dst_path=tmp
                )
            )
            meta = json.loads((local / _META_FILE).read_text())
            hashes = np.load(local / _HASHES_FILE).astype(np.uint64)
    except (OSError, ValueError, KeyError, mlflow.exceptions.MlflowException) as exc:
        if unreachable_reason(exc) is not None:
            raise  # transient: let the task retry
        try:  # a tracking server that does not answer is an outage, not a missing artifact
            mlflow.tracking.MlflowClient().get_run(run_id)
        except mlflow.exceptions.MlflowException as lookup:
            if "RESOURCE_DOES_NOT_EXIST" not in str(lookup.error_code):
                raise exc from None
        return TrainingIds(None, None, f"the champion's training IDs are unavailable ({exc})"[:300])
    if meta.get("scheme") != ID_HASH_SCHEME:
        return TrainingIds(None, None, f"the champion's training IDs use {meta.get('scheme')!r}")
    digest = id_set_digest(hashes)
    if digest != meta.get("digest"):
        return TrainingIds(None, None, "the champion's training IDs do not match their digest")
    return TrainingIds(hashes, digest)
