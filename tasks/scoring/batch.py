"""Batch scoring with the champion: chunked, so memory stays bounded whatever the base size."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tasks.data.schema import ID_COLUMN, NEGATIVE_LABEL, POSITIVE_LABEL
from tasks.steps import retried_step
from tasks.training.model import LABEL_COLUMN, PROBABILITY_COLUMN

OutputFormat = Literal["csv", "parquet"]


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run wrote."""

    output: str
    rows: int
    predicted_churners: int
    model_version: str
    threshold: float
    seconds: float

    def describe(self) -> str:
        share = self.predicted_churners / self.rows if self.rows else 0.0
        return (
            f"scored {self.rows:,} customers with version {self.model_version} in "
            f"{self.seconds:.1f} s: {self.predicted_churners:,} ({share:.1%}) above the "
            f"{self.threshold:.2f} threshold -> {self.output}"
        )


def output_format(path: Path) -> OutputFormat:
    """Parquet for .parquet/.pq, CSV otherwise."""
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"


def score_chunk(model: Any, rows: pd.DataFrame, *, version: str, scored_at: str) -> pd.DataFrame:
    """Predictions for one chunk of raw rows: id, probability, label, version, time."""
    proba = model.predict_proba(rows)
    return pd.DataFrame(
        {
            ID_COLUMN: rows[ID_COLUMN].to_numpy(),
            PROBABILITY_COLUMN: proba,
            LABEL_COLUMN: np.where(proba >= model.threshold, POSITIVE_LABEL, NEGATIVE_LABEL),
            "model_version": version,
            "scored_at": scored_at,
        }
    )


@retried_step("write-scores", retries=1)
def write_scores(
    model: Any,
    frame: pd.DataFrame,
    *,
    output: Path,
    version: str,
    chunk_rows: int = 100_000,
) -> ScoreSummary:
    """Score `frame` chunk by chunk with the champion's ChurnModel and stream to `output`.

    Only one chunk of predictions is in memory at a time; the file is written to a temporary
    name and renamed, so a failed run never leaves half a file where the previous one was.
    """
    if frame.empty:
        raise ValueError("nothing to score: the input has no rows")
    started = time.perf_counter()
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    fmt = output_format(output)
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer: pacsv.CSVWriter | pq.ParquetWriter | None = None
    churners = 0
    try:
        for start in range(0, len(frame), chunk_rows):
            scores = score_chunk(
                model, frame.iloc[start : start + chunk_rows], version=version, scored_at=scored_at
            )
            churners += int((scores[LABEL_COLUMN] == POSITIVE_LABEL).sum())
            # Arrow writes both formats: its CSV writer is ~5x faster than pandas' to_csv.
            table = pa.Table.from_pandas(scores, preserve_index=False)
            if writer is None:
                writer = (
                    pacsv.CSVWriter(partial, table.schema)
                    if fmt == "csv"
                    else pq.ParquetWriter(partial, table.schema)
                )
            writer.write_table(table)
        if writer is not None:
            writer.close()
            writer = None
        partial.replace(output)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return ScoreSummary(
        output=str(output),
        rows=len(frame),
        predicted_churners=churners,
        model_version=version,
        threshold=float(model.threshold),
        seconds=round(time.perf_counter() - started, 3),
    )
