"""Segment guardrails: is the challenger worse than the champion for a segment the business
cares about, while the average improves?

A segment column is categorical (a segment per value) or numeric with band edges
(`tenure:12/24/48`: below 12, 12 to 24, 24 to 48, 48 and up). Each segment with enough rows and
churners is compared on the same bootstrap resamples as the whole holdout; the one-sided
p-values of "worse by more than the tolerance" are adjusted with Holm's step-down method, so
naming more segments does not mean more refusals by chance. Pure: frames and numbers in,
results out.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from tasks.data.schema import CATEGORICAL_DOMAINS
from tasks.decision.intervals import Interval, SegmentDraws, SegmentInterval
from tasks.decision.rule import SegmentGuard, metric_sign, parse_segment_column

SegmentStatus = Literal["pass", "regression", "too-small"]


def _band_label(column: str, low: float | None, high: float | None) -> str:
    def n(x: float) -> str:
        return f"{x:g}"

    if low is None and high is not None:
        return f"{column} < {n(high)}"
    if high is None and low is not None:
        return f"{column} >= {n(low)}"
    assert low is not None and high is not None
    return f"{n(low)} <= {column} < {n(high)}"


def segment_masks(
    frame: pd.DataFrame, columns: tuple[str, ...]
) -> dict[str, npt.NDArray[np.bool_]]:
    """Each segment's rows of `frame`, by label (`Contract = Month-to-month`, `tenure < 12`).

    Categorical segments in the domain's order, then any other value seen; a row with no value
    belongs to no segment of that column.
    """
    out: dict[str, npt.NDArray[np.bool_]] = {}
    for spec in columns:
        column, cuts = parse_segment_column(spec)
        values = frame[column]
        if cuts:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(float)
            edges: list[float | None] = [None, *cuts, None]
            for low, high in itertools.pairwise(edges):
                rows = np.isfinite(numbers)
                if low is not None:
                    rows &= numbers >= low
                if high is not None:
                    rows &= numbers < high
                out[_band_label(column, low, high)] = rows
            continue
        text = values.astype(object).where(values.notna(), None).astype(str).to_numpy()
        text[values.isna().to_numpy()] = ""
        seen = [v for v in pd.unique(text) if v]
        domain = [str(v) for v in CATEGORICAL_DOMAINS.get(column, ())]
        ordered = [v for v in domain if v in seen] + sorted(v for v in seen if v not in domain)
        for value in ordered:
            out[f"{column} = {value}"] = text == value
    return out


class SegmentResult(BaseModel):
    """One segment's comparison and verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str
    rows: int
    churners: int
    status: SegmentStatus
    metric: str
    challenger: float | None = None
    champion: float | None = None
    difference: Interval | None = None  # challenger - champion, raw
    p_adjusted: float | None = None  # Holm-adjusted p-value of "worse beyond the tolerance"
    tolerance: float = 0.0

    @property
    def churn_rate(self) -> float:
        return self.churners / self.rows if self.rows else 0.0

    def text(self) -> str:
        if self.status == "too-small":
            return (
                f"{self.segment}: too small to judge ({self.rows} rows, {self.churners} churners)"
            )
        assert self.difference is not None and self.challenger is not None
        mark = {"pass": "ok", "regression": "WORSE"}[self.status]
        return (
            f"{self.segment}: {self.metric} {self.challenger:.4f} vs {self.champion:.4f}, "
            f"change {self.difference.text()} (tolerance {self.tolerance:g}, Holm p "
            f"{self.p_adjusted:.3f}) {mark}"
        )


def segment_draws(
    frame: pd.DataFrame, labels: npt.NDArray[np.int64], guard: SegmentGuard
) -> tuple[SegmentDraws | None, tuple[SegmentResult, ...]]:
    """The segments to compare (enough rows and churners) and those too small to judge."""
    if not guard.columns:
        return None, ()
    judged: dict[str, npt.NDArray[np.bool_]] = {}
    small: list[SegmentResult] = []
    for label, rows in segment_masks(frame, guard.columns).items():
        n, churners = int(rows.sum()), int(labels[rows].sum())
        if n < guard.min_rows or min(churners, n - churners) < guard.min_churners:
            small.append(
                SegmentResult(
                    segment=label,
                    rows=n,
                    churners=churners,
                    status="too-small",
                    metric=guard.metric,
                    tolerance=guard.tolerance,
                )
            )
        else:
            judged[label] = rows
    if not judged:
        return None, tuple(small)
    draws = SegmentDraws(
        labels=tuple(judged),
        masks=np.stack(list(judged.values()), axis=1),
        metric=guard.metric,
        tolerance=guard.tolerance,
    )
    return draws, tuple(small)


def judgeable(
    draws: SegmentDraws, labels: npt.NDArray[np.int64]
) -> tuple[SegmentDraws | None, tuple[SegmentResult, ...]]:
    """The segments of `draws` holding both classes (a metric exists), and the others as too
    small to judge."""
    keep = [s for s in range(len(draws.labels)) if np.unique(labels[draws.masks[:, s]]).size == 2]
    small = tuple(
        SegmentResult(
            segment=label,
            rows=int(draws.masks[:, s].sum()),
            churners=int(labels[draws.masks[:, s]].sum()),
            status="too-small",
            metric=draws.metric,
            tolerance=draws.tolerance,
        )
        for s, label in enumerate(draws.labels)
        if s not in keep
    )
    if not keep:
        return None, small
    kept = draws.model_copy(
        update={"labels": tuple(draws.labels[s] for s in keep), "masks": draws.masks[:, keep]}
    )
    return kept, small


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def judge_segments(
    draws: SegmentDraws,
    intervals: dict[str, SegmentInterval],
    labels: npt.NDArray[np.int64],
    small: tuple[SegmentResult, ...],
    *,
    confidence: float,
) -> tuple[SegmentResult, ...]:
    """Each segment's verdict: a regression when its Holm-adjusted p-value is at most the
    rule's one-sided level, (1 - confidence) / 2, the level its interval's lower end reads."""
    alpha = (1 - confidence) / 2
    adjusted = holm([intervals[label].p_worse for label in draws.labels])
    results = []
    for s, label in enumerate(draws.labels):
        stats, rows = intervals[label], draws.masks[:, s]
        results.append(
            SegmentResult(
                segment=label,
                rows=int(rows.sum()),
                churners=int(labels[rows].sum()),
                status="regression" if adjusted[s] <= alpha else "pass",
                metric=draws.metric,
                challenger=stats.challenger.estimate,
                champion=stats.champion.estimate,
                difference=stats.difference,
                p_adjusted=adjusted[s],
                tolerance=draws.tolerance,
            )
        )
    return (*results, *small)


def worst_regression(results: tuple[SegmentResult, ...]) -> SegmentResult | None:
    """The regressed segment with the largest confident worsening, if any."""
    regressed = [r for r in results if r.status == "regression" and r.difference is not None]
    if not regressed:
        return None
    return min(
        regressed,
        key=lambda r: metric_sign(r.metric) * r.difference.upper,  # type: ignore[union-attr]
    )
