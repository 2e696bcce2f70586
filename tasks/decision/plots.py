"""Comparison and simulation plots (matplotlib, written as PNG files; no MLflow or Prefect).

matplotlib is imported inside the functions, with the Agg backend, so importing this module
costs nothing and never needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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
    plt: Any, labels: npt.ArrayLike, models: Mapping[str, npt.ArrayLike], path: Path, title: str
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
    cal.set(xlabel="predicted churn probability", ylabel="observed churn rate", title="Calibration")
    lift.axhline(1.0, color="grey", linestyle=":")
    lift.set(xlabel="score decile (1 = highest)", ylabel="lift", title="Lift by decile")
    lift.set_xticks(range(1, 11))
    for ax in axes.ravel():
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def simulation_figure(months: Sequence[dict[str, Any]], path: Path, *, title: str = "") -> Path:
    """Challenger and champion holdout scores per month, promotions marked, drift shaded.

    Each month: period, drift, metric, challenger, champion (None if none), promoted (bool),
    champion_after (version).
    """
    plt = _pyplot()
    with _default_style():
        return _simulation_figure(plt, months, path, title)


def _simulation_figure(plt: Any, months: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
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
    drift_ax = ax.twinx()
    drift_ax.fill_between(x, [m["drift"] for m in months], color="grey", alpha=0.12, step="mid")
    drift_ax.set_ylim(0, 4)  # keep the shading in the lower quarter
    drift_ax.set_yticks([0, 0.5, 1.0])
    drift_ax.set_ylabel("drift strength (shaded)")
    metric = months[0]["metric"] if months else "score"
    ax.set(xlabel="month", ylabel=f"holdout {metric}")
    fig.suptitle(title or "Champion vs challenger")
    ax.set_xticks(x, periods, rotation=45, ha="right")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=3, frameon=False, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
