"""Holdout metrics, and the same metrics on many bootstrap resamples at once (vectorised numpy).

Besides ranking, calibration and threshold metrics, the metrics of the list a campaign calls:
the top `contacts` rows by score (`ListTerms`). A resample re-ranks each model: its list is the
riskiest `contacts` of the rows drawn (ties share the last places pro rata, as a random
tie-break would on average).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tasks.decision.rule import CAPACITY_METRICS, METRICS

EPS = 1e-12


_PROBA_CLIP = 1e-7
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ListTerms:
    """The campaign on one holdout: how many rows it contacts, and what each churner on the
    list brings (save rate x value) against the cost of each contact."""

    contacts: int
    gains: Array | None = None  # save_rate x value per row; None: no retention value
    contact_cost: float = 0.0


def holdout_metrics(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    *,
    threshold: float = 0.5,
    terms: ListTerms | None = None,
) -> dict[str, float]:
    """Ranking, calibration and thresholded metrics of churn probabilities against 0/1 labels;
    with `terms`, the metrics at the campaign's capacity too."""
    from sklearn import metrics

    y, p = labels_and_proba(y_true, proba)
    predicted = (p >= threshold).astype(int)
    out = {
        "roc_auc": float(metrics.roc_auc_score(y, p)),
        "pr_auc": float(metrics.average_precision_score(y, p)),
        "brier": float(metrics.brier_score_loss(y, p)),
        "log_loss": float(metrics.log_loss(y, p)),
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
    }
    if terms is not None:
        wanted = [m for m in available_metrics(METRICS, terms) if m in CAPACITY_METRICS]
        ones = np.ones((1, y.size))
        at = resampled_metrics(y, p, ones, threshold=threshold, metrics=wanted, terms=terms)
        out.update({name: float(values[0]) for name, values in at.items()})
    return out


def available_metrics(metrics: Sequence[str], terms: ListTerms | None) -> tuple[str, ...]:
    """Those of `metrics` these terms can compute (retention value needs customer values)."""
    return tuple(m for m in metrics if _available(m, terms))


def _available(metric: str, terms: ListTerms | None) -> bool:
    if metric == "retention_value_at_capacity":
        return terms is not None and terms.gains is not None
    return metric not in CAPACITY_METRICS or terms is not None


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
    terms: ListTerms | None = None,
    ranking: Ranking | None = None,
    listed: Array | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Every metric in `metrics` for each row of `counts` (row weights), as arrays of length B.

    With `counts` all ones this equals `holdout_metrics` (the tests check it). `placements` and
    `ranking` of (y, p) can be passed in so that many chunks of resamples share one sort of the
    scores; `listed` (from `Ranking.listed`) when the caller already has it.
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
    hits = np.zeros(0)
    if CAPACITY_METRICS & set(metrics):
        if terms is None:
            raise ValueError("metrics at capacity need the campaign's terms")
        if listed is None:
            listed = (ranking or Ranking(p)).listed(counts, terms.contacts)
        hits = listed @ yf
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
        elif name in CAPACITY_METRICS and terms is not None and listed is not None:
            won = None if terms.gains is None else listed @ (yf * terms.gains)
            k = listed.sum(axis=1)  # = contacts, unless a resample has fewer rows
            out[name] = _at_capacity(name, hits, positives, total, k, won, terms.contact_cost)
        else:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return out


def _at_capacity(
    name: str,
    hits: Array,
    positives: Array,
    total: Array,
    listed: Array,
    won: Array | None,
    contact_cost: float,
) -> Array:
    """One metric of a list, from its sums (per resample, or per resample and segment): churners
    on the list, churners, customers, customers on the list, and gains won by the list."""
    if name == "recall_at_capacity":
        return _ratio(hits, positives)
    if name == "precision_at_capacity":
        return _ratio(hits, listed)
    if name == "f1_at_capacity":
        return _ratio(2 * hits, listed + positives)
    if name == "lift_at_capacity":
        return _ratio(_ratio(hits, listed) * total, positives)
    if won is None:
        raise ValueError("retention_value_at_capacity needs the value of each customer")
    return _ratio(won - contact_cost * listed, total)  # per scored customer


def _ratio(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


class Ranking:
    """Rows by score, riskiest first, ties grouped: one sort per model for every resample."""

    def __init__(self, p: npt.NDArray[np.float64]) -> None:
        self.order = np.argsort(-p, kind="mergesort")
        ranked = p[self.order]
        self.starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        self.group = np.repeat(np.arange(self.starts.size), np.diff(np.r_[self.starts, p.size]))

    def listed(self, counts: Array, contacts: int) -> Array:
        """(B, n): how many copies of each row each resample puts on its list of `contacts`.

        Rows tied at the edge of the list share its last places pro rata.
        """
        drawn = counts[:, self.order]
        out = np.empty_like(drawn)
        if self.starts.size == self.order.size:  # no ties: each row is its own group
            before = np.cumsum(drawn, axis=1)
            before -= drawn
            np.clip(contacts - before, 0.0, drawn, out=before)
            out[:, self.order] = before
            return out
        groups = np.add.reduceat(drawn, self.starts, axis=1)
        before = np.cumsum(groups, axis=1) - groups
        taken = np.clip(contacts - before, 0.0, groups)
        share = np.divide(taken, groups, out=np.zeros_like(groups), where=groups > 0)
        out[:, self.order] = drawn * share[:, self.group]
        return out


def segment_metric(
    name: str,
    y: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    counts: Array,
    masks: npt.NDArray[np.bool_],
    *,
    threshold: float,
    terms: ListTerms | None = None,
    listed: Array | None = None,
    placements: Sequence[Placements | None] | None = None,
) -> Array:
    """(B, S): metric `name` within each segment (a column of `masks`) for each resample.

    A metric at capacity reads the month's list (`listed`) within the segment: the share of the
    segment's churners it calls, its lift over the segment's churn rate, its value per segment
    customer. Any other metric is computed on the segment's rows alone; NaN where a resample
    leaves a segment with one class.
    """
    if name in CAPACITY_METRICS:
        if terms is None or listed is None:
            raise ValueError("segment metrics at capacity need the list")
        m = masks.astype(float)
        yf = y.astype(float)
        won = None if terms.gains is None else (listed * (yf * terms.gains)) @ m
        return _at_capacity(
            name, (listed * yf) @ m, (counts * yf) @ m, counts @ m, listed @ m, won,
            terms.contact_cost,
        )  # fmt: skip
    columns = []
    for s in range(masks.shape[1]):
        rows = masks[:, s]
        at = None if placements is None else placements[s]
        sub = counts[:, rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            values = resampled_metrics(
                y[rows], p[rows], sub, threshold=threshold, metrics=(name,), placements=at
            )[name]
        ys = y[rows].astype(float)
        one_class = (sub @ ys == 0) | (sub @ (1 - ys) == 0)
        columns.append(np.where(one_class, np.nan, values))
    return np.stack(columns, axis=1)


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
