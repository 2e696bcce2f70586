"""Score challenger and champion on the same holdout and apply the decision rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.evaluation import (
    Decision,
    DecisionRule,
    PairedIntervals,
    evaluate,
    holdout_metrics,
    holdout_shortfall,
    insufficient_holdout,
)
from tasks.model import PROBABILITY_COLUMN, ChurnModel
from tasks.schema import POSITIVE_LABEL, TARGET


@dataclass(frozen=True)
class Comparison:
    """Both models' holdout metrics and probabilities, their intervals and the decision."""

    holdout_rows: int
    challenger: dict[str, float]
    champion: dict[str, float] | None
    decision: Decision
    intervals: PairedIntervals | None = None
    champion_problem: str | None = None
    labels: npt.NDArray[np.int64] | None = None  # holdout churn as 0/1, for the report plots
    challenger_proba: npt.NDArray[np.float64] | None = None
    champion_proba: npt.NDArray[np.float64] | None = None


def predict_churn(model: Any, holdout: pd.DataFrame) -> tuple[npt.NDArray[np.float64], float]:
    """Churn probabilities of a ChurnModel or a loaded pyfunc on raw rows, and its threshold."""
    rows = holdout.drop(columns=[TARGET])
    if isinstance(model, ChurnModel):
        return model.predict_proba(rows), model.threshold
    # Through pyfunc's predict, so the champion's signature checks the raw rows too.
    proba = np.asarray(model.predict(rows)[PROBABILITY_COLUMN].to_numpy(), dtype=float)
    return proba, float(getattr(model.unwrap_python_model(), "threshold", 0.5))


def score_model(model: Any, holdout: pd.DataFrame) -> dict[str, float]:
    """Holdout metrics of a ChurnModel or a loaded pyfunc, both fed the same raw rows."""
    proba, threshold = predict_churn(model, holdout)
    return holdout_metrics(holdout[TARGET] == POSITIVE_LABEL, proba, threshold=threshold)


@task(name="compare-with-champion", cache_policy=NO_CACHE)
def compare_with_champion(
    challenger: ChurnModel,
    champion: Any | None,
    holdout: pd.DataFrame,
    rule: DecisionRule,
    *,
    seed: int = 0,
    champion_problem: str | None = None,
) -> Comparison:
    """Score both on the holdout neither trained on; decide by `rule` (seeded, so repeatable).

    A champion that raises while scoring is a named outcome (`champion_problem`), not a crash.
    """
    labels = (holdout[TARGET] == POSITIVE_LABEL).to_numpy().astype(np.int64)
    shortfall = holdout_shortfall(
        rule,
        rows=len(holdout),
        positives=int(labels.sum()),
        with_champion=champion is not None,
    )
    if shortfall is not None:
        return Comparison(
            holdout_rows=len(holdout),
            challenger={},
            champion=None,
            decision=insufficient_holdout(rule, shortfall),
            champion_problem=champion_problem,
        )
    ours, our_threshold = predict_churn(challenger, holdout)
    theirs: npt.NDArray[np.float64] | None = None
    their_threshold = 0.5
    if champion is not None:
        try:
            theirs, their_threshold = predict_churn(champion, holdout)
            if theirs.shape != ours.shape or not np.isfinite(theirs).all():
                raise ValueError(f"returned {theirs.size} probabilities, not all finite")
        except Exception as exc:
            text = str(exc).strip().splitlines()
            champion_problem = (
                f"the champion cannot score this snapshot: {type(exc).__name__}: "
                f"{text[0] if text else ''}"
            )[:300]
            theirs = None
    evaluation = evaluate(
        rule,
        labels,
        ours,
        theirs,
        thresholds=(our_threshold, their_threshold),
        seed=seed,
        champion_problem=champion_problem,
    )
    return Comparison(
        holdout_rows=len(holdout),
        challenger=evaluation.challenger,
        champion=evaluation.champion,
        decision=evaluation.decision,
        intervals=evaluation.intervals,
        champion_problem=champion_problem,
        labels=labels,
        challenger_proba=ours,
        champion_proba=theirs,
    )
