"""Holdout metrics, paired confidence intervals and the promotion decision.

Pure functions: no Prefect, MLflow or disk. The statistics are vectorised numpy:

- `paired_bootstrap` draws the resamples once (stratified: positives and negatives resampled
  separately, as pROC does, so every resample has both classes) as a matrix of row counts and
  evaluates every metric of both models on the same resamples, so the difference
  challenger - champion is paired. ROC-AUC and average precision are computed from the counts
  with one sort per model (ties get half credit), not one sort per resample.
- `delong_difference` is the analytic alternative for ROC-AUC (DeLong et al. 1988, the fast
  midrank form of Sun & Xu 2014).
- `decide` applies a `DecisionRule` (data: metric, method, margin, guardrails, floor, leakage
  ceiling) to the numbers and names the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

Metric = Literal["roc_auc", "pr_auc", "brier", "log_loss", "accuracy", "precision", "recall", "f1"]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
#: Metrics where smaller is better; everything else is higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"brier", "log_loss"})

Method = Literal["bootstrap", "delong", "point"]

Verdict = Literal[
    "promote-first",
    "promote",
    "replace-unusable-champion",
    "keep-champion",
    "tie",
    "reject-below-floor",
    "reject-guardrail",
    "reject-leakage-suspected",
    "champion-unusable",
    "insufficient-holdout",
    "conflict",
    "already-promoted",
]
#: Verdicts that move the champion alias (if the promotion is not refused as a conflict).
PROMOTING: frozenset[str] = frozenset({"promote-first", "promote", "replace-unusable-champion"})

_EPS = 1e-12
# Resamples per chunk are chosen so one chunk holds about this many counts (memory stays flat).
_CHUNK_CELLS = 1_000_000
_PROBA_CLIP = 1e-7


def holdout_metrics(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """Ranking, calibration and thresholded metrics of churn probabilities against 0/1 labels."""
    from sklearn import metrics

    y, p = _labels_and_proba(y_true, proba)
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


def _labels_and_proba(
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


# --------------------------------------------------------------------------------------------
# Metrics of many resamples at once: `counts` is (resamples, rows), how often each row was drawn.


def resampled_metrics(
    y: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    counts: npt.NDArray[np.float64],
    *,
    threshold: float,
    metrics: Sequence[str] = METRICS,
    placements: _Placements | None = None,
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
    ranked: tuple[_Placements, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
    if {"roc_auc", "pr_auc"} & set(metrics):
        at = placements if placements is not None else _Placements(y, p)
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


class _Placements:
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
    at: _Placements, pos_w: npt.NDArray[np.float64], neg_cum: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Mann-Whitney AUC with row weights: P(score of a positive > a negative), ties count half."""
    below = neg_cum[:, at.neg_below]
    tied = neg_cum[:, at.neg_not_above] - below
    wins = (pos_w * (below + 0.5 * tied)).sum(axis=1)
    return np.asarray(wins / (pos_w.sum(axis=1) * neg_cum[:, -1]), dtype=float)


def _resampled_average_precision(
    at: _Placements, pos_w: npt.NDArray[np.float64], neg_cum: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Average precision as sklearn defines it: each positive weighs the precision at its score."""
    pos_cum = _cumulative(pos_w[:, at.pos_order])
    pos_at_or_above = pos_cum[:, -1:] - pos_cum[:, at.pos_below]
    neg_at_or_above = neg_cum[:, -1:] - neg_cum[:, at.neg_below]
    flagged = np.asarray(pos_at_or_above + neg_at_or_above, dtype=float)
    precision = _ratio(pos_at_or_above, flagged)
    return np.asarray((pos_w * precision).sum(axis=1) / pos_cum[:, -1], dtype=float)


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


# --------------------------------------------------------------------------------------------
# Intervals


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
    placements = [_Placements(y, p) if ranked else None for p in probas]
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
    y, pa = _labels_and_proba(y_true, challenger)
    _, pb = _labels_and_proba(y_true, champion)
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
    y, p = _labels_and_proba(y_true, proba)
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

    y, pa = _labels_and_proba(y_true, challenger)
    _, pb = _labels_and_proba(y_true, champion)
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
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    covariance = s10 / m + s01 / n
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    estimate = aucs[0] - aucs[1]
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(variance, 0.0))
    return Interval(
        estimate=estimate,
        lower=estimate - half,
        upper=estimate + half,
        confidence=confidence,
        method="DeLong paired",
    )


# --------------------------------------------------------------------------------------------
# The rule and the decision


class Guardrail(BaseModel):
    """A metric the challenger may not worsen, relative to the champion, by more than a tolerance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(description="Holdout metric to protect (recall at the threshold, ...).")
    max_worsening: float = Field(
        ge=0.0,
        le=1.0,
        description="Largest allowed worsening vs the champion (a drop for higher-is-better "
        "metrics, a rise for brier and log_loss), on the point estimates.",
    )


DEFAULT_GUARDRAILS: tuple[Guardrail, ...] = (
    Guardrail(metric="recall", max_worsening=0.05),
    Guardrail(metric="brier", max_worsening=0.01),
)


class DecisionRule(BaseModel):
    """When a challenger replaces the champion. Data, not code: it is logged with every decision.

    Defaults measured by `benchmarks/bench_decision.py` on the real Telco data (200 trials per
    scenario, two seeds): a 95% paired bootstrap interval whose lower end must clear +0.002 AUC
    promoted an equally good retrain in 0-2.5% of trials (margin 0: 2.5-7%, because two
    retrains do differ by tiny real amounts) and a challenger 0.025 AUC better in 82-91% with
    the default guardrails (93-98% without); promoting on the point estimate promoted the
    equally good one 49-56% of the time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Field(
        default="roc_auc", description="Holdout metric the challenger and champion are ranked by."
    )
    method: Method = Field(
        default="bootstrap",
        description="How the difference is judged: bootstrap (paired, stratified; any metric), "
        "delong (roc_auc only, analytic) or point (the point estimate alone; no interval).",
    )
    min_improvement: float = Field(
        default=0.002,
        ge=0.0,
        le=0.5,
        description="Margin the lower end of the interval of (challenger - champion) must "
        "exceed to promote; with method=point, the margin the point estimate must reach.",
    )
    confidence: float = Field(
        default=0.95,
        ge=0.5,
        le=0.999,
        description="Two-sided confidence of the interval (its lower end is the one-sided "
        "bound at (1 + confidence) / 2).",
    )
    n_bootstrap: int = Field(
        default=2000, ge=100, le=100_000, description="Bootstrap resamples of the holdout."
    )
    guardrails: tuple[Guardrail, ...] = Field(
        default=DEFAULT_GUARDRAILS,
        description="Metrics the challenger may not worsen by more than a tolerance "
        "(checked against the champion only).",
    )
    floor: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Absolute bound the challenger must meet on the metric, champion or not "
        "(a minimum, or a maximum for lower-is-better metrics such as brier).",
    )
    leakage_ceiling: float | None = Field(
        default=0.90,
        ge=0.5,
        le=1.0,
        description="A challenger holdout roc_auc above this is rejected as suspected leakage "
        "(Telco models reach about 0.85; far above means a feature gives the label away). "
        "Empty: no check.",
    )
    min_holdout_rows: int = Field(
        default=100,
        ge=10,
        le=1_000_000,
        description="Fewest holdout rows a comparison with the champion may rest on.",
    )
    replace_unusable_champion: bool = Field(
        default=True,
        description="If the champion cannot be loaded or cannot score the snapshot, promote a "
        "challenger that passes the floor and the leakage check (off: keep it, verdict "
        "champion-unusable, for a person to act on).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DecisionRule:
        if self.method == "delong" and self.metric != "roc_auc":
            raise ValueError("method 'delong' compares roc_auc only")
        ceiling = self.leakage_ceiling
        if ceiling is not None and self.metric == "roc_auc" and ceiling <= self.floor:
            raise ValueError(f"leakage_ceiling {ceiling} must be above floor {self.floor}")
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics the rule reads: the ranked one, then the guarded ones."""
        names = [self.metric, *(g.metric for g in self.guardrails)]
        return tuple(dict.fromkeys(names))

    def describe(self) -> str:
        """One line, for tags and summaries."""
        if self.method == "point":
            test = f"point estimate >= +{self.min_improvement}"
        else:
            test = f"{self.confidence:.0%} {self.method} lower bound > +{self.min_improvement}"
        guards = ", ".join(f"{g.metric} -{g.max_worsening}" for g in self.guardrails) or "none"
        ceiling = "" if self.leakage_ceiling is None else f", leakage > {self.leakage_ceiling}"
        return f"{self.metric}: {test}; floor {self.floor}; guardrails {guards}{ceiling}"


def _sign(metric: str) -> float:
    return -1.0 if metric in LOWER_IS_BETTER else 1.0


class GuardrailResult(BaseModel):
    """One guardrail's numbers and verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    challenger: float
    champion: float
    worsening: float  # positive = the challenger is worse
    max_worsening: float
    passed: bool
    interval: Interval | None = None  # of challenger - champion, when computed

    def text(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        return (
            f"{self.metric} {self.challenger:.4f} vs {self.champion:.4f}: worsens by "
            f"{self.worsening:+.4f} (allowed {self.max_worsening:.4f}) {mark}"
        )


def check_guardrails(
    guardrails: Sequence[Guardrail],
    challenger: Mapping[str, float],
    champion: Mapping[str, float],
    differences: Mapping[str, Interval] | None = None,
) -> tuple[GuardrailResult, ...]:
    """Each guardrail against the champion's point estimates."""
    results = []
    for guard in guardrails:
        ours, theirs = challenger[guard.metric], champion[guard.metric]
        worsening = _sign(guard.metric) * (theirs - ours)
        results.append(
            GuardrailResult(
                metric=guard.metric,
                challenger=ours,
                champion=theirs,
                worsening=worsening,
                max_worsening=guard.max_worsening,
                passed=worsening <= guard.max_worsening + _EPS,
                interval=(differences or {}).get(guard.metric),
            )
        )
    return tuple(results)


class Decision(BaseModel):
    """The verdict of one comparison and the numbers behind it."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    promote: bool
    reason: str
    metric: str
    challenger_score: float | None  # None when the holdout could not be scored
    champion_score: float | None
    improvement: float | None  # sign-adjusted: positive = the challenger is better
    interval: Interval | None = None  # of challenger - champion on `metric`, raw
    guardrails: tuple[GuardrailResult, ...] = ()


def decide(
    rule: DecisionRule,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    difference: Interval | None = None,
    guardrail_intervals: Mapping[str, Interval] | None = None,
    champion_problem: str | None = None,
) -> Decision:
    """Apply `rule` to the challenger's and (if any) champion's holdout numbers.

    Checks, in order: leakage ceiling, floor, unusable or absent champion, the interval (or point estimate) against the margin, then the guardrails. `difference` is the
    interval of challenger - champion on `rule.metric`; required unless `rule.method` is point.
    `champion_problem` says why a champion that exists could not be scored.
    """
    name = rule.metric
    ours = challenger[name]
    sign = _sign(name)
    theirs = None if champion is None else champion[name]
    gain = None if theirs is None else sign * (ours - theirs)
    measured = champion is not None and all(
        g.metric in challenger and g.metric in champion for g in rule.guardrails
    )
    guards = (
        check_guardrails(rule.guardrails, challenger, champion, guardrail_intervals)
        if measured and champion is not None
        else ()
    )

    def _decision(verdict: Verdict, reason: str) -> Decision:
        return Decision(
            verdict=verdict,
            promote=verdict in PROMOTING,
            reason=reason,
            metric=name,
            challenger_score=ours,
            champion_score=theirs,
            improvement=gain,
            interval=difference,
            guardrails=guards,
        )

    auc = challenger.get("roc_auc")
    if rule.leakage_ceiling is not None and auc is not None and auc > rule.leakage_ceiling:
        return _decision(
            "reject-leakage-suspected",
            f"challenger roc_auc {auc:.4f} is above the leakage ceiling "
            f"{rule.leakage_ceiling:.4f}: a feature probably gives the label away; not promoted",
        )
    if sign * (ours - rule.floor) < 0:
        bound = "minimum" if rule.higher_is_better else "maximum"
        return _decision(
            "reject-below-floor",
            f"challenger {name} {ours:.4f} misses the {bound} of {rule.floor:.4f}",
        )
    if champion_problem is not None:
        if rule.replace_unusable_champion:
            return _decision(
                "replace-unusable-champion",
                f"{champion_problem}; challenger {name} {ours:.4f} meets the floor "
                f"{rule.floor:.4f} and replaces it",
            )
        return _decision(
            "champion-unusable",
            f"{champion_problem}; the rule keeps it for a person to act on "
            "(replace_unusable_champion is off)",
        )
    if theirs is None or gain is None:
        return _decision(
            "promote-first",
            f"no champion yet; challenger {name} {ours:.4f} meets the floor {rule.floor:.4f}",
        )
    margin = rule.min_improvement
    versus = f"challenger {name} {ours:.4f} vs champion {theirs:.4f}"
    if rule.method == "point":
        if abs(gain) <= _EPS:
            return _decision("tie", f"tie: {versus} are equal; champion stays")
        if gain < margin - _EPS:
            return _decision(
                "keep-champion",
                f"{versus}: {gain:+.4f} is short of the required {margin:+.4f}",
            )
        better = f"{versus}: {gain:+.4f} reaches the required {margin:+.4f}"
    else:
        if difference is None:
            raise ValueError(f"method {rule.method!r} needs the interval of the difference")
        lower, upper = sorted((sign * difference.lower, sign * difference.upper))
        shown = (
            f"{versus}, improvement {gain:+.4f} "
            f"[{lower:+.4f}, {upper:+.4f}] ({difference.confidence:.0%} {rule.method})"
        )
        if lower > margin + _EPS:
            better = f"{shown}: lower bound clears the margin {margin:+.4f}"
        elif upper < -_EPS:
            return _decision("keep-champion", f"{shown}: the champion is better; champion stays")
        elif lower <= _EPS:
            return _decision(
                "tie",
                f"tie: {shown} includes no improvement; champion stays",
            )
        else:
            return _decision(
                "keep-champion",
                f"{shown}: better, but the lower bound misses the margin {margin:+.4f}",
            )
    if rule.guardrails and not measured:
        raise ValueError("the guardrails need their metrics for both models")
    failed = [g for g in guards if not g.passed]
    if failed:
        return _decision(
            "reject-guardrail",
            f"{better}, but guardrails failed: " + "; ".join(g.text() for g in failed),
        )
    return _decision("promote", better)


class Evaluation(BaseModel):
    """Both models' holdout metrics, their intervals and the decision taken on them."""

    model_config = ConfigDict(frozen=True)

    challenger: dict[str, float]
    champion: dict[str, float] | None
    intervals: PairedIntervals | None
    decision: Decision


def evaluate(
    rule: DecisionRule,
    y_true: npt.ArrayLike,
    challenger_proba: npt.ArrayLike,
    champion_proba: npt.ArrayLike | None,
    *,
    thresholds: tuple[float, float] = (0.5, 0.5),
    seed: int = 0,
    champion_problem: str | None = None,
    report_metrics: Sequence[str] = METRICS,
) -> Evaluation:
    """Score both models on the same holdout, compute the intervals the rule needs, decide.

    `report_metrics` are bootstrapped too (for the comparison report); pass () to compute only
    what the rule needs. Deterministic in `seed`.
    """
    y = np.asarray(y_true).astype(np.int64)
    ours = holdout_metrics(y, challenger_proba, threshold=thresholds[0])
    theirs = (
        None
        if champion_proba is None
        else holdout_metrics(y, champion_proba, threshold=thresholds[1])
    )
    needed = rule.metrics if rule.method == "bootstrap" and theirs is not None else ()
    wanted = tuple(dict.fromkeys([*report_metrics, *needed]))
    intervals: PairedIntervals | None = None
    if wanted and champion_proba is not None:
        intervals = paired_bootstrap(
            y,
            challenger_proba,
            champion_proba,
            metrics=wanted,
            thresholds=thresholds,
            confidence=rule.confidence,
            n_resamples=rule.n_bootstrap,
            seed=seed,
        )
    elif report_metrics:
        alone = bootstrap_intervals(
            y,
            challenger_proba,
            metrics=report_metrics,
            threshold=thresholds[0],
            confidence=rule.confidence,
            n_resamples=rule.n_bootstrap,
            seed=seed,
        )
        intervals = PairedIntervals(challenger=alone, champion={}, difference={})
    difference: Interval | None = None
    if champion_proba is not None and rule.method == "delong":
        difference = delong_difference(
            y, challenger_proba, champion_proba, confidence=rule.confidence
        )
    elif intervals is not None and rule.method == "bootstrap":
        difference = intervals.difference.get(rule.metric)
    decision = decide(
        rule,
        ours,
        theirs,
        difference=difference,
        guardrail_intervals=None if intervals is None else intervals.difference,
        champion_problem=champion_problem,
    )
    return Evaluation(challenger=ours, champion=theirs, intervals=intervals, decision=decision)


def holdout_shortfall(
    rule: DecisionRule, *, rows: int, positives: int, with_champion: bool
) -> str | None:
    """Why a holdout cannot carry the decision (too few rows, one class), or None if it can."""
    if positives == 0 or positives == rows:
        return f"the {rows}-row holdout has one class only; no model can be ranked on it"
    if with_champion and rows < rule.min_holdout_rows:
        return (
            f"only {rows} holdout rows the champion never trained on; the rule needs "
            f"{rule.min_holdout_rows} to compare"
        )
    return None


def insufficient_holdout(rule: DecisionRule, problem: str) -> Decision:
    """The decision when the holdout cannot carry a comparison: nothing is promoted."""
    return Decision(
        verdict="insufficient-holdout",
        promote=False,
        reason=f"{problem}; champion stays",
        metric=rule.metric,
        challenger_score=None,
        champion_score=None,
        improvement=None,
    )
