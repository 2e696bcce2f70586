"""Score challenger and champion on the same holdout and apply the decision rule."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from pydantic import BaseModel, ConfigDict

from tasks.evaluation import Decision, DecisionRule, decide, holdout_metrics
from tasks.model import PROBABILITY_COLUMN, ChurnModel
from tasks.schema import POSITIVE_LABEL, TARGET


class Comparison(BaseModel):
    """Both models' holdout metrics and the decision taken on them."""

    model_config = ConfigDict(frozen=True)

    holdout_rows: int
    challenger: dict[str, float]
    champion: dict[str, float] | None
    decision: Decision


def score_model(model: Any, holdout: pd.DataFrame) -> dict[str, float]:
    """Holdout metrics of a ChurnModel or a loaded pyfunc, both fed the same raw rows."""
    rows = holdout.drop(columns=[TARGET])
    if isinstance(model, ChurnModel):
        proba = model.predict_proba(rows)
        threshold = model.threshold
    else:
        # Through pyfunc's predict, so the champion's signature checks the raw rows too.
        proba = model.predict(rows)[PROBABILITY_COLUMN].to_numpy()
        threshold = getattr(model.unwrap_python_model(), "threshold", 0.5)
    return holdout_metrics(holdout[TARGET] == POSITIVE_LABEL, proba, threshold=threshold)


@task(name="compare-with-champion")
def compare_with_champion(
    challenger: ChurnModel, champion: Any | None, holdout: pd.DataFrame, rule: DecisionRule
) -> Comparison:
    """Score both on the holdout the challenger never saw; decide by `rule`."""
    ours = score_model(challenger, holdout)
    theirs = None if champion is None else score_model(champion, holdout)
    return Comparison(
        holdout_rows=len(holdout),
        challenger=ours,
        champion=theirs,
        decision=decide(rule, ours, theirs),
    )
