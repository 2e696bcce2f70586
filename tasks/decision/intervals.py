"""Paired confidence intervals for challenger - champion: stratified bootstrap and DeLong."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tasks.decision.metrics import (
    EPS,
    ListTerms,
    Placements,
    Ranking,
    labels_and_proba,
    resampled_metrics,
    segment_metric,
)
from tasks.decision.rule import CAPACITY_METRICS, METRICS, metric_sign

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


class SegmentInterval(BaseModel):
    """Both models' segment metric and their difference, with the one-sided bootstrap p-value
    of "the challenger is worse here by more than the tolerance" not holding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    challenger: Interval
    champion: Interval
    difference: Interval  # raw
    #: P*(sign x difference >= -tolerance): small means confidently worse beyond the tolerance.
    p_worse: float


class SegmentDraws(BaseModel):
    """What to compare within segments: their labels, row masks (n, S), metric and tolerance."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    labels: tuple[str, ...]
    masks: npt.NDArray[np.bool_]
    metric: str
    tolerance: float


class PairedIntervals(BaseModel):
    """Per-metric intervals of the challenger, the champion and their difference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    challenger: dict[str, Interval]
    champion: dict[str, Interval]
    difference: dict[str, Interval]  # challenger - champion, raw (not sign-adjusted)
    #: Per segment (by label), on the same resamples: see `SegmentDraws`.
    segments: dict[str, SegmentInterval] = {}


def _resampled_draws(
    y: npt.NDArray[np.int64],
    probas: Sequence[npt.NDArray[np.float64]],
    thresholds: Sequence[float],
    *,
    metrics: Sequence[str],
    n_resamples: int,
    seed: int,
    terms: ListTerms | None = None,
    segments: SegmentDraws | None = None,
    counts: npt.NDArray[np.float64] | None = None,
) -> list[dict[str, npt.NDArray[np.float64]]]:
    """Each model's metrics on the same `n_resamples` stratified resamples (one dict per model;
    with `segments`, key `segments` holds the (B, S) segment metric).

    Resamples are drawn in chunks of about `_CHUNK_CELLS` counts, which bounds memory; each
    model's scores are ranked once for all chunks. `counts` given (all ones: the point
    estimates) replaces the resamples.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    given = counts
    wanted = set(metrics) | ({segments.metric} if segments else set())
    ranked = bool({"roc_auc", "pr_auc"} & set(metrics))
    placements = [Placements(y, p) if ranked else None for p in probas]
    listing = bool(CAPACITY_METRICS & wanted)
    rankings = [Ranking(p) if listing else None for p in probas]
    by_segment: list[list[Placements | None] | None] = [None for _ in probas]
    if segments is not None and segments.metric in ("roc_auc", "pr_auc"):
        by_segment = [[Placements(y[m], p[m]) for m in segments.masks.T] for p in probas]
    draws: list[dict[str, list[npt.NDArray[np.float64]]]] = [{} for _ in probas]
    for size in _chunks(n_resamples, max(1, _CHUNK_CELLS // y.size)):
        counts = _stratified_counts(y, size, rng) if given is None else given
        for p, threshold, at, rank, seg_at, model_draws in zip(
            probas, thresholds, placements, rankings, by_segment, draws, strict=True
        ):
            listed = None if rank is None or terms is None else rank.listed(counts, terms.contacts)
            chunk = resampled_metrics(
                y, p, counts, threshold=threshold, metrics=metrics, placements=at,
                terms=terms, listed=listed,
            )  # fmt: skip
            if segments is not None:
                chunk["segments"] = segment_metric(
                    segments.metric, y, p, counts, segments.masks, threshold=threshold,
                    terms=terms, listed=listed, placements=seg_at,
                )  # fmt: skip
            for name, values in chunk.items():
                model_draws.setdefault(name, []).append(values)
    return [{name: np.concatenate(d[name]) for name in d} for d in draws]


def _percentile_interval(
    estimate: float, values: npt.NDArray[np.float64], confidence: float, method: str
) -> Interval:
    tail = (1 - confidence) / 2
    finite = values[np.isfinite(values)]  # a segment resample with one class has no AUC
    lower, upper = np.quantile(finite, [tail, 1 - tail]) if finite.size else (np.nan, np.nan)
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
    terms: ListTerms | None = None,
    segments: SegmentDraws | None = None,
) -> PairedIntervals:
    """Percentile intervals of each metric and of challenger - champion on shared resamples,
    and, with `segments`, of each segment's metric.

    Deterministic in `seed`; both models always see the same resampled rows.
    """
    y, pa = labels_and_proba(y_true, challenger)
    _, pb = labels_and_proba(y_true, champion)
    ours, theirs = _resampled_draws(
        y, (pa, pb), thresholds, metrics=metrics, n_resamples=n_resamples, seed=seed,
        terms=terms, segments=segments,
    )  # fmt: skip
    (point_a,), (point_b,) = (
        _resampled_draws(
            y,
            (p,),
            (t,),
            metrics=metrics,
            n_resamples=1,
            seed=seed,
            terms=terms,
            segments=segments,
            counts=np.ones((1, y.size)),
        )
        for p, t in ((pa, thresholds[0]), (pb, thresholds[1]))
    )
    method = f"paired stratified bootstrap, {n_resamples} resamples, seed {seed}"
    result: dict[str, dict[str, Interval]] = {"challenger": {}, "champion": {}, "difference": {}}
    for name in metrics:
        a, b = point_a[name][0], point_b[name][0]
        result["challenger"][name] = _percentile_interval(a, ours[name], confidence, method)
        result["champion"][name] = _percentile_interval(b, theirs[name], confidence, method)
        result["difference"][name] = _percentile_interval(
            a - b, ours[name] - theirs[name], confidence, method
        )
    by_segment: dict[str, SegmentInterval] = {}
    if segments is not None:
        sign = metric_sign(segments.metric)
        for s, label in enumerate(segments.labels):
            a, b = point_a["segments"][0, s], point_b["segments"][0, s]
            diff = ours["segments"][:, s] - theirs["segments"][:, s]
            finite = diff[np.isfinite(diff)]
            not_worse = int((sign * finite >= -segments.tolerance - EPS).sum())
            by_segment[label] = SegmentInterval(
                challenger=_percentile_interval(a, ours["segments"][:, s], confidence, method),
                champion=_percentile_interval(b, theirs["segments"][:, s], confidence, method),
                difference=_percentile_interval(a - b, diff, confidence, method),
                p_worse=(not_worse + 1) / (finite.size + 1),
            )
    return PairedIntervals(**result, segments=by_segment)


def bootstrap_intervals(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    *,
    metrics: Sequence[str] = METRICS,
    threshold: float = 0.5,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    terms: ListTerms | None = None,
) -> dict[str, Interval]:
    """Intervals of one model's metrics (no champion to compare with): the same resamples as
    `paired_bootstrap` draws for the challenger, without scoring a second model."""
    y, p = labels_and_proba(y_true, proba)
    (draws,) = _resampled_draws(
        y, (p,), (threshold,), metrics=metrics, n_resamples=n_resamples, seed=seed, terms=terms
    )
    (point,) = _resampled_draws(
        y, (p,), (threshold,), metrics=metrics, n_resamples=1, seed=seed, terms=terms,
        counts=np.ones((1, y.size)),
    )  # fmt: skip
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
