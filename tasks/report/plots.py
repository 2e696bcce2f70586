"""Comparison, simulation and reign plots (matplotlib, written as PNG files; no MLflow or Prefect).

matplotlib is imported inside the functions, with the Agg backend, so importing this module
costs nothing and never needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tasks.registry.reign import Reign

COLOURS = {"challenger": "#1f77b4", "champion": "#ff7f0e"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _default_style() -> Any:
    """matplotlib's own defaults: PyCaret's seaborn import swaps in fonts this host lacks."""
    import matplotlib.style

    return matplotlib.style.context("default")


def decile_lift(labels: npt.ArrayLike, proba: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Churn rate in each score decile (highest scores first) divided by the overall rate."""
    y = np.asarray(labels, dtype=float)
    order = np.argsort(-np.asarray(proba, dtype=float), kind="mergesort")
    deciles = np.array_split(y[order], 10)
    base = y.mean()
    return np.array([part.mean() / base if part.size and base else 0.0 for part in deciles])


def _save(plt: Any, fig: Any, path: Path, title: str | None = None) -> Path:
    """Title (if any), lay out, write `path` (its folder made), close the figure."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def comparison_figure(
    labels: npt.ArrayLike,
    models: Mapping[str, npt.ArrayLike],
    path: Path,
    *,
    title: str = "",
) -> Path:
    """ROC, precision-recall, calibration and decile-lift panels for each model, side by side.

    `models` maps a label (e.g. "challenger v3") to its holdout probabilities.
    """
    plt = _pyplot()
    with _default_style():
        return _comparison_figure(plt, labels, models, path, title)


def _comparison_figure(
    plt: Any,
    labels: npt.ArrayLike,
    models: Mapping[str, npt.ArrayLike],
    path: Path,
    title: str,
) -> Path:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

    y = np.asarray(labels, dtype=int)
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    roc, pr, cal, lift = axes.ravel()
    width = 0.8 / max(1, len(models))
    for n, (name, proba) in enumerate(models.items()):
        p = np.asarray(proba, dtype=float)
        colour = next((c for key, c in COLOURS.items() if name.startswith(key)), None)
        fpr, tpr, _ = roc_curve(y, p)
        roc.plot(fpr, tpr, color=colour, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
        precision, recall, _ = precision_recall_curve(y, p)
        pr.plot(recall, precision, color=colour, label=name)
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
        cal.plot(predicted, observed, marker="o", color=colour, label=name)
        lifts = decile_lift(y, p)
        lift.bar(
            np.arange(1, 11) + (n - (len(models) - 1) / 2) * width,
            lifts,
            width=width,
            color=colour,
            label=f"{name} (top decile {lifts[0]:.2f}x)",
        )
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr.axhline(y.mean(), color="grey", linestyle=":")
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    cal.plot([0, 1], [0, 1], color="grey", linestyle=":")
    cal.set(
        xlabel="predicted churn probability",
        ylabel="observed churn rate",
        title="Calibration",
    )
    lift.axhline(1.0, color="grey", linestyle=":")
    lift.set(xlabel="score decile (1 = highest)", ylabel="lift", title="Lift by decile")
    lift.set_xticks(range(1, 11))
    for ax in axes.ravel():
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    return _save(plt, fig, path, title)


def capacity_curves(
    labels: npt.ArrayLike,
    proba: npt.ArrayLike,
    gains: npt.ArrayLike | None = None,
    contact_cost: float = 0.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """For each list size k = 1..n (riskiest first): the share contacted, the recall, and
    (with `gains`) the retention value per scored customer."""
    y = np.asarray(labels, dtype=float)
    order = np.argsort(-np.asarray(proba, dtype=float), kind="mergesort")
    n = y.size
    share = np.arange(1, n + 1) / n
    recall = np.cumsum(y[order]) / max(y.sum(), 1.0)
    if gains is None:
        return share, recall, None
    won = np.cumsum((y * np.asarray(gains, dtype=float))[order])
    value = (won - contact_cost * np.arange(1, n + 1)) / n
    return share, recall, value


def capacity_figure(
    labels: npt.ArrayLike,
    models: Mapping[str, npt.ArrayLike],
    path: Path,
    *,
    contacts: int,
    gains: npt.ArrayLike | None = None,
    contact_cost: float = 0.0,
    title: str = "",
) -> Path:
    """What each model's list brings against how many customers the team calls: recall and,
    with `gains`, retention value per scored customer; the campaign's list of `contacts` marked."""
    plt = _pyplot()
    capacity = contacts / max(1, np.asarray(labels).size)
    at = max(0, contacts - 1)
    with _default_style():
        panels = 2 if gains is not None else 1
        fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.8), squeeze=False)
        recall_ax = axes[0][0]
        value_ax = axes[0][1] if gains is not None else None
        for name, proba in models.items():
            colour = next((c for key, c in COLOURS.items() if name.startswith(key)), None)
            share, recall, value = capacity_curves(labels, proba, gains, contact_cost)
            recall_ax.plot(
                share,
                recall,
                color=colour,
                label=f"{name} ({recall[at]:.1%} at capacity)",
            )
            if value_ax is not None and value is not None:
                value_ax.plot(
                    share,
                    value,
                    color=colour,
                    label=f"{name} ({value[at]:,.2f} at capacity)",
                )
        recall_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random list")
        recall_ax.set(
            xlabel="share of customers contacted (riskiest first)",
            ylabel="share of churners on the list (recall)",
            title="Churners found",
        )
        if value_ax is not None:
            value_ax.axhline(0.0, color="grey", linestyle=":")
            value_ax.set(
                xlabel="share of customers contacted (riskiest first)",
                ylabel="retention value per scored customer",
                title="Retention value",
            )
        for ax in axes[0]:
            ax.axvline(capacity, color="#d62728", linestyle="--", linewidth=1)
            ax.annotate(
                f"capacity {capacity:.0%}",
                (capacity, 0.02),
                xycoords=("data", "axes fraction"),
                xytext=(4, 0),
                textcoords="offset points",
                color="#d62728",
                fontsize=8,
            )
            ax.legend(loc="best", fontsize=8)
            ax.grid(alpha=0.3)
        return _save(plt, fig, path, title)


def simulation_figure(
    months: Sequence[dict[str, Any]],
    path: Path,
    *,
    title: str = "",
    floor: float | None = None,
) -> Path:
    """Challenger and champion holdout scores per month, promotions marked, drift shaded, and
    the rule's roc_auc floor when the scores are roc_auc.

    Each month: period, drift, metric, challenger, champion (None if none), promoted (bool),
    champion_after (version).
    """
    plt = _pyplot()
    with _default_style():
        return _simulation_figure(plt, months, path, title, floor)


def _simulation_figure(
    plt: Any,
    months: Sequence[dict[str, Any]],
    path: Path,
    title: str,
    floor: float | None,
) -> Path:
    fig, ax = plt.subplots(figsize=(11, 5))
    x = np.arange(len(months))
    periods = [m["period"] for m in months]
    challenger = [m["challenger"] if m["challenger"] is not None else np.nan for m in months]
    champion = [m["champion"] if m["champion"] is not None else np.nan for m in months]
    ax.plot(x, challenger, marker="o", color=COLOURS["challenger"], label="challenger")
    ax.plot(x, champion, marker="s", color=COLOURS["champion"], label="champion (same rows)")
    promoted = [i for i, m in enumerate(months) if m["promoted"]]
    if promoted:
        ax.scatter(
            promoted,
            [challenger[i] for i in promoted],
            marker="*",
            s=260,
            color="#2ca02c",
            zorder=5,
            label="promoted",
        )
    for i, m in enumerate(months):
        ax.annotate(
            f"v{m['champion_after']}" if m.get("champion_after") else "-",
            (i, np.nanmax([challenger[i], champion[i]])),
            textcoords="offset points",
            xytext=(0, 9),
            ha="center",
            fontsize=8,
        )
    if floor is not None and months and months[0]["metric"] == "roc_auc":
        ax.axhline(
            floor,
            color=HEALTH_COLOURS["below-floor"],
            linestyle=":",
            label=f"floor {floor:g}",
        )
    drift_ax = ax.twinx()
    drift_ax.fill_between(x, [m["drift"] for m in months], color="grey", alpha=0.12, step="mid")
    drift_ax.set_ylim(0, 4)  # keep the shading in the lower quarter
    drift_ax.set_yticks([0, 0.5, 1.0])
    drift_ax.set_ylabel("drift strength (shaded)")
    metric = months[0]["metric"] if months else "score"
    ax.set(xlabel="month", ylabel=f"holdout {metric}")
    title = title or "Champion vs challenger"
    ax.set_xticks(x, periods, rotation=45, ha="right")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=4, frameon=False, fontsize=9)
    return _save(plt, fig, path, title)


#: Marker colour of a month by the health state its run recorded.
HEALTH_COLOURS = {"healthy": "#2ca02c", "degraded": "#ff7f0e", "below-floor": "#d62728"}


def reign_figure(reign: Reign, path: Path) -> Path:
    """The champion's score month by month with intervals, against its score at promotion,
    the health tolerance below it and the rule's floor."""
    plt = _pyplot()
    with _default_style():
        return _reign_figure(plt, reign, path)


def _reign_figure(plt: Any, reign: Reign, path: Path) -> Path:
    from tasks.decision.rule import metric_sign

    start = reign.at_promotion
    points = [*([start] if start else []), *reign.months]
    labels = [f"{p.period or '?'}\n(promoted)" if p is start else p.period or "?" for p in points]
    n = max(1, len(points))
    fig, ax = plt.subplots(figsize=(min(16.0, 5.0 + 0.4 * n), 4.8))
    xs = np.arange(len(points))
    y = np.array([np.nan if p.estimate is None else p.estimate for p in points], dtype=float)
    ax.plot(xs, y, color="grey", alpha=0.5, linewidth=1)  # the trend; gaps where not scored
    for i, p in enumerate(points):
        if p.estimate is None:
            continue
        colour = COLOURS["challenger"] if p is start else HEALTH_COLOURS.get(p.state or "", "grey")
        error = None
        if p.lower is not None and p.upper is not None:
            error = [[max(0.0, p.estimate - p.lower)], [max(0.0, p.upper - p.estimate)]]
        ax.errorbar(
            [i],
            [p.estimate],
            yerr=error,
            fmt="*" if p is start else "o",
            color=colour,
            markersize=12 if p is start else 7,
            capsize=4,
            zorder=3,
        )
    if start is not None and start.estimate is not None:
        ax.axhline(
            start.estimate,
            color=COLOURS["challenger"],
            linestyle="--",
            linewidth=1,
            label=f"at promotion {start.estimate:.4f}",
        )
        if reign.tolerance:
            # The allowed drop: below a higher-is-better score, above a lower-is-better one.
            edge = start.estimate - metric_sign(reign.metric) * reign.tolerance
            ax.axhspan(
                min(edge, start.estimate),
                max(edge, start.estimate),
                color=COLOURS["challenger"],
                alpha=0.08,
                label=f"tolerance {reign.tolerance:g}",
            )
    if reign.floor is not None:
        ax.axhline(
            reign.floor,
            color=HEALTH_COLOURS["below-floor"],
            linestyle=":",
            linewidth=1.5,
            label=f"floor {reign.floor:g}",
        )
    for state, colour in HEALTH_COLOURS.items():  # a legend entry per state that occurs
        if any(p.state == state for p in reign.months):
            ax.plot([], [], "o", color=colour, label=state)
    step = max(1, -(-len(points) // 24))  # at most 24 labels on a long reign
    tilt = {"rotation": 45, "ha": "right"} if len(points) > 6 else {}
    ax.set_xticks(xs[::step], labels[::step], fontsize=8, **tilt)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set(xlabel="month", ylabel=f"holdout {reign.metric} (fresh rows)")
    ax.set_title(f"{reign.model_name} champion v{reign.version}: {reign.metric} over its reign")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    return _save(plt, fig, path)
