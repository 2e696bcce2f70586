"""Holdout metrics, and the same metrics on many bootstrap resamples at once (vectorised numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tasks.decision.rule import METRICS

EPS = 1e-12


_PROBA_CLIP = 1e-7


def holdout_metrics(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """Ranking, calibration and thresholded metrics of churn probabilities against 0/1 labels."""
    from sklearn import metrics

    y, p = labels_and_proba(y_true, proba)
    predicted = (p >= threshold).astype(int)
    return {
        "roc_auc": float(metrics.roc_auc_score(y, p)),
        "pr_auc": float(metrics.average_precision_score(y, p)),
        "brier": float(metrics.brier_score_loss(y, p)),
        "log_loss": float(metrics.log_loss(y, p)),
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
    }


def labels_and_proba(
    y_true: npt.ArrayLike, proba: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    y = np.asarray(y_true).astype(np.int64)
    p = np.clip(np.asarray(proba, dtype=float), _PROBA_CLIP, 1 - _PROBA_CLIP)
    if y.size == 0 or np.unique(y).size < 2:
        raise ValueError("holdout needs both classes to score a model")
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities for {y.size} labels")
    if not np.isfinite(p).all():
        raise ValueError("probabilities contain NaN or infinite values")
    return y, p


def resampled_metrics(
    y: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    counts: npt.NDArray[np.float64],
    *,
    threshold: float,
    metrics: Sequence[str] = METRICS,
    placements: Placements | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Every metric in `metrics` for each row of `counts` (row weights), as arrays of length B.

    With `counts` all ones this equals `holdout_metrics` (the tests check it). `placements` of
    (y, p) can be passed in so that many chunks of resamples share one sort of the scores.
    """
    yf = y.astype(float)
    total = counts.sum(axis=1)
    positives = counts @ yf
    predicted = (p >= threshold).astype(float)
    tp = counts @ (predicted * yf)
    flagged = counts @ predicted
    ranked: tuple[Placements, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
    if {"roc_auc", "pr_auc"} & set(metrics):
        at = placements if placements is not None else Placements(y, p)
        ranked = (at, *at.weights(counts))
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name in metrics:
        if name == "roc_auc" and ranked is not None:
            out[name] = _resampled_auc(*ranked)
        elif name == "pr_auc" and ranked is not None:
            out[name] = _resampled_average_precision(*ranked)
        elif name == "brier":
            out[name] = counts @ (p - yf) ** 2 / total
        elif name == "log_loss":
            out[name] = counts @ -(yf * np.log(p) + (1 - yf) * np.log(1 - p)) / total
        elif name == "accuracy":
            out[name] = counts @ (predicted == yf).astype(float) / total
        elif name == "recall":
            out[name] = _ratio(tp, positives)
        elif name == "precision":
            out[name] = _ratio(tp, flagged)
        elif name == "f1":
            out[name] = _ratio(2 * tp, flagged + positives)
        else:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return out


def _ratio(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


class Placements:
    """Where each positive's score falls among the negatives' and the positives' scores.

    With these, weighted ROC-AUC and average precision are cumulative sums and gathers: one
    sort per model, not one per resample. Build it once per model and pass it to every chunk
    of resamples (at 140k holdout rows, re-sorting per chunk cost most of the bootstrap).
    """

    def __init__(self, y: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> None:
        self.pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        neg_order = np.argsort(p[neg], kind="mergesort")
        self.pos_order = np.argsort(p[self.pos], kind="mergesort")
        self.neg_by_score = neg[neg_order]  # row indices, so a chunk needs one gather
        neg_sorted, pos_sorted = p[self.neg_by_score], p[self.pos][self.pos_order]
        scores = p[self.pos]
        self.neg_below = np.searchsorted(neg_sorted, scores, side="left")
        self.neg_not_above = np.searchsorted(neg_sorted, scores, side="right")
        self.pos_below = np.searchsorted(pos_sorted, scores, side="left")

    def weights(
        self, counts: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Positive weights (B, P) and cumulative weights of the negatives by score (B, N+1)."""
        return counts[:, self.pos], _cumulative(counts[:, self.neg_by_score])


def _cumulative(weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Row-wise cumulative sums after a 0 column: (B, K) -> (B, K+1)."""
    out = np.zeros((weights.shape[0], weights.shape[1] + 1))
    np.cumsum(weights, axis=1, out=out[:, 1:])
    return out


def _resampled_auc(
    at: Placements, pos_w: npt.NDArray[np.float64], neg_cum: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Mann-Whitney AUC with row weights: P(score of a positive > a negative), ties count half."""
    below = neg_cum[:, at.neg_below]
    tied = neg_cum[:, at.neg_not_above] - below
    wins = (pos_w * (below + 0.5 * tied)).sum(axis=1)
    return np.asarray(wins / (pos_w.sum(axis=1) * neg_cum[:, -1]), dtype=float)


def _resampled_average_precision(
    at: Placements, pos_w: npt.NDArray[np.float64], neg_cum: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Average precision as sklearn defines it: each positive weighs the precision at its score."""
    pos_cum = _cumulative(pos_w[:, at.pos_order])
    pos_at_or_above = pos_cum[:, -1:] - pos_cum[:, at.pos_below]
    neg_at_or_above = neg_cum[:, -1:] - neg_cum[:, at.neg_below]
    flagged = np.asarray(pos_at_or_above + neg_at_or_above, dtype=float)
    precision = _ratio(pos_at_or_above, flagged)
    return np.asarray((pos_w * precision).sum(axis=1) / pos_cum[:, -1], dtype=float)
