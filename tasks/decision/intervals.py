"""Paired confidence intervals for challenger - champion: stratified bootstrap and DeLong."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tasks.decision.metrics import Placements, labels_and_proba, resampled_metrics
from tasks.decision.rule import METRICS

# Resamples per chunk are chosen so one chunk holds about this many counts (memory stays flat).
_CHUNK_CELLS = 1_000_000


def _stratified_counts(
    y: npt.NDArray[np.int64], resamples: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """(resamples, n) draw counts: positives and negatives each resampled with replacement."""
    offsets = (np.arange(resamples) * y.size)[:, None]
    flat = [
        (offsets + members[rng.integers(0, members.size, size=(resamples, members.size))]).ravel()
        for members in (np.flatnonzero(y == 1), np.flatnonzero(y == 0))
    ]
    counts = np.bincount(np.concatenate(flat), minlength=resamples * y.size)
    return counts.reshape(resamples, y.size).astype(float)


def _chunks(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


class Interval(BaseModel):
    """A point estimate with a two-sided confidence interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimate: float
    lower: float
    upper: float
    confidence: float
    method: str

    def text(self, digits: int = 4) -> str:
        return f"{self.estimate:+.{digits}f} [{self.lower:+.{digits}f}, {self.upper:+.{digits}f}]"


class PairedIntervals(BaseModel):
    """Per-metric intervals of the challenger, the champion and their difference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    challenger: dict[str, Interval]
    champion: dict[str, Interval]
    difference: dict[str, Interval]  # challenger - champion, raw (not sign-adjusted)


def _resampled_draws(
    y: npt.NDArray[np.int64],
    probas: Sequence[npt.NDArray[np.float64]],
    thresholds: Sequence[float],
    *,
    metrics: Sequence[str],
    n_resamples: int,
    seed: int,
) -> list[dict[str, npt.NDArray[np.float64]]]:
    """Each model's metrics on the same `n_resamples` stratified resamples (one dict per model).

    Resamples are drawn in chunks of about `_CHUNK_CELLS` counts, which bounds memory; each
    model's scores are ranked once for all chunks.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    ranked = bool({"roc_auc", "pr_auc"} & set(metrics))
    placements = [Placements(y, p) if ranked else None for p in probas]
    draws: list[dict[str, list[npt.NDArray[np.float64]]]] = [{} for _ in probas]
    for size in _chunks(n_resamples, max(1, _CHUNK_CELLS // y.size)):
        counts = _stratified_counts(y, size, rng)
        for p, threshold, at, model_draws in zip(
            probas, thresholds, placements, draws, strict=True
        ):
            chunk = resampled_metrics(
                y, p, counts, threshold=threshold, metrics=metrics, placements=at
            )
            for name in metrics:
                model_draws.setdefault(name, []).append(chunk[name])
    return [{name: np.concatenate(d[name]) for name in metrics} for d in draws]


def _percentile_interval(
    estimate: float, values: npt.NDArray[np.float64], confidence: float, method: str
) -> Interval:
    tail = (1 - confidence) / 2
    lower, upper = np.quantile(values, [tail, 1 - tail])
    return Interval(
        estimate=float(estimate),
        lower=float(lower),
        upper=float(upper),
        confidence=confidence,
        method=method,
    )


def paired_bootstrap(
    y_true: npt.ArrayLike,
    challenger: npt.ArrayLike,
    champion: npt.ArrayLike,
    *,
    metrics: Sequence[str] = METRICS,
    thresholds: tuple[float, float] = (0.5, 0.5),
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedIntervals:
    """Percentile intervals of each metric and of challenger - champion on shared resamples.

    Deterministic in `seed`; both models always see the same resampled rows.
    """
    y, pa = labels_and_proba(y_true, challenger)
    _, pb = labels_and_proba(y_true, champion)
    ours, theirs = _resampled_draws(
        y, (pa, pb), thresholds, metrics=metrics, n_resamples=n_resamples, seed=seed
    )
    ones = np.ones((1, y.size))
    point_a = resampled_metrics(y, pa, ones, threshold=thresholds[0], metrics=metrics)
    point_b = resampled_metrics(y, pb, ones, threshold=thresholds[1], metrics=metrics)
    method = f"paired stratified bootstrap, {n_resamples} resamples, seed {seed}"
    result: dict[str, dict[str, Interval]] = {"challenger": {}, "champion": {}, "difference": {}}
    for name in metrics:
        a, b = point_a[name][0], point_b[name][0]
        result["challenger"][name] = _percentile_interval(a, ours[name], confidence, method)
        result["champion"][name] = _percentile_interval(b, theirs[name], confidence, method)
        result["difference"][name] = _percentile_interval(
            a - b, ours[name] - theirs[name], confidence, method
        )
    return PairedIntervals(**result)


def bootstrap_intervals(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    *,
    metrics: Sequence[str] = METRICS,
    threshold: float = 0.5,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Intervals of one model's metrics (no champion to compare with): the same resamples as
    `paired_bootstrap` draws for the challenger, without scoring a second model."""
    y, p = labels_and_proba(y_true, proba)
    (draws,) = _resampled_draws(
        y, (p,), (threshold,), metrics=metrics, n_resamples=n_resamples, seed=seed
    )
    point = resampled_metrics(y, p, np.ones((1, y.size)), threshold=threshold, metrics=metrics)
    method = f"stratified bootstrap, {n_resamples} resamples, seed {seed}"
    return {
        name: _percentile_interval(point[name][0], draws[name], confidence, method)
        for name in metrics
    }


def delong_difference(
    y_true: npt.ArrayLike,
    challenger: npt.ArrayLike,
    champion: npt.ArrayLike,
    *,
    confidence: float = 0.95,
) -> Interval:
    """ROC-AUC of challenger minus champion with DeLong's paired normal interval."""
    from scipy.stats import norm, rankdata

    y, pa = labels_and_proba(y_true, challenger)
    _, pb = labels_and_proba(y_true, champion)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    aucs, v10, v01 = [], [], []
    for p in (pa, pb):
        # Midranks within positives, negatives and all rows give the placement values.
        rank_all = rankdata(p)
        rank_pos, rank_neg = rankdata(p[pos]), rankdata(p[neg])
        placement_pos = (rank_all[pos] - rank_pos) / n  # share of negatives below each positive
        placement_neg = 1.0 - (rank_all[neg] - rank_neg) / m  # share of positives above each neg
        aucs.append(float(placement_pos.mean()))
        v10.append(placement_pos)
        v01.append(placement_neg)
    estimate = aucs[0] - aucs[1]
    if m < 2 or n < 2:  # one positive or one negative: no variance to estimate, no evidence
        half = math.inf
    else:
        s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
        covariance = s10 / m + s01 / n
        variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
        half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(variance, 0.0))
    # A difference of two AUCs lies in [-1, 1]; the interval says no more than that.
    return Interval(
        estimate=estimate,
        lower=max(estimate - half, -1.0),
        upper=min(estimate + half, 1.0),
        confidence=confidence,
        method="DeLong paired",
    )
