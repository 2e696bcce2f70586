"""The month split for a retrain (`split_month`): the fair holdout, and the challenger's training
rows, capped: a stratified, seeded sample of a large training split.

Past some tens of thousands of rows a bigger training split stops buying ROC-AUC
(benchmarks/bench_learning_curve.py measures where) while training time keeps growing. Only the
training split is ever sampled: the holdout the models are compared on stays whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from tasks.data.schema import TARGET
from tasks.decision.holdout import (
    HoldoutSummary,
    TrainingIds,
    holdout_cap,
    split_fair_holdout,
    stratified_sample,
    take_rows,
)
from tasks.decision.rule import DecisionRule


class TrainingSample(BaseModel):
    """Which training rows the challenger used and why; part of the decision record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows_available: int  # the training split
    rows_used: int
    max_rows: int | None  # the cap; None: train on everything
    seed: int
    reason: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sampled(self) -> bool:
        return self.rows_used < self.rows_available

    def tags(self) -> dict[str, str]:
        """The sample as MLflow run tags."""
        return {
            "training.sampled": str(self.sampled).lower(),
            "training.rows_available": str(self.rows_available),
            "training.rows_used": str(self.rows_used),
            "training.sample_reason": self.reason[:5000],
        }


@dataclass(frozen=True)
class SampledTraining:
    """The rows to train on and the summary that says how they were chosen."""

    frame: pd.DataFrame
    summary: TrainingSample


def sample_training_rows(
    train: pd.DataFrame,
    *,
    max_rows: int | None,
    seed: int,
    positions: npt.NDArray[np.intp] | None = None,
) -> SampledTraining:
    """At most `max_rows` of `train`: all of it at or below the cap (or with no cap), otherwise a
    sample stratified on the target (each class within one row of its share) drawn with `seed`.

    The sample keeps the split's row order, so the same split and seed give the same rows.
    `positions` are the training rows of `train` when it is the whole month (HoldoutSplit's
    `frame` and `train_positions`): only the sample is copied out of it.
    """
    rows = np.arange(len(train)) if positions is None else positions
    chosen, summary = choose_training_rows(
        train[TARGET].to_numpy(), rows, max_rows=max_rows, seed=seed
    )
    frame = train if positions is None and not summary.sampled else take_rows(train, chosen)
    return SampledTraining(frame=frame, summary=summary)


def choose_training_rows(
    labels: npt.NDArray[Any], positions: npt.NDArray[np.intp], *, max_rows: int | None, seed: int
) -> tuple[npt.NDArray[np.intp], TrainingSample]:
    """`sample_training_rows`' choice among `positions` of a month with these `labels` (or
    flags of the positive label): the positions to train on, and the summary."""
    available = positions.size
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be at least 1 (or None), got {max_rows}")
    if max_rows is None or available <= max_rows:
        chosen = positions
        reason = (
            "no cap: trained on every training row"
            if max_rows is None
            else f"{available:,} training rows, at or below the cap of {max_rows:,}: trained on all"
        )
    else:
        chosen = positions[stratified_sample(labels[positions], max_rows, seed)]
        reason = (
            f"{available:,} training rows, over the cap of {max_rows:,}: trained on a stratified "
            f"sample of {max_rows:,} (seed {seed})"
        )
    summary = TrainingSample(
        rows_available=available,
        rows_used=chosen.size,
        max_rows=max_rows,
        seed=seed,
        reason=reason,
    )
    return chosen, summary


@dataclass(frozen=True)
class SplitOptions:
    """How a month is split: the holdout's share and seed, the rule (its cap on holdout rows)
    and the cap on training rows."""

    fraction: float
    seed: int
    rule: DecisionRule
    max_train_rows: int | None


@dataclass(frozen=True)
class MonthSplit:
    """The fair holdout, and the challenger's training rows (a sample over the cap)."""

    holdout: pd.DataFrame
    holdout_summary: HoldoutSummary
    training: SampledTraining


def split_month(
    frame: pd.DataFrame, champion_ids: TrainingIds | None, options: SplitOptions
) -> MonthSplit:
    """`split_fair_holdout` of the month, then `sample_training_rows` of its training split:
    over the cap the challenger trains on a stratified sample, the holdout stays whole."""
    split = split_fair_holdout(
        frame,
        fraction=options.fraction,
        seed=options.seed,
        champion_ids=champion_ids,
        max_rows=holdout_cap(options.rule, frame[TARGET]),
    )
    training = sample_training_rows(
        frame, positions=split.train_positions, max_rows=options.max_train_rows, seed=options.seed
    )
    return MonthSplit(split.holdout, split.summary, training)
