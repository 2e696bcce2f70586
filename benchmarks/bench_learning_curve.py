"""Learning curve: the challenger's CV and holdout ROC-AUC and training time against training rows.

    make bench-learning-curve     # or: uv run python benchmarks/bench_learning_curve.py \
        [--sizes 5000 10000 ...] [--seeds 42 1] [--compare-rows 700000] [--cap N]

One generated month (`generate_snapshot`, seed `--data-seed`) with max(sizes) + `--holdout-rows`
customers; one fixed, stratified holdout of `--holdout-rows` from it; for each seed and size, a
stratified sample of the rest (`sample_training_rows`, the flow's own sampler) trained exactly as
the flow trains (`train_challenger`, default models and folds; from 100k rows the large-month
plan) and scored on that holdout. The real Telco CSV gives the small end on its own 80/20 split
(its 1,409-row holdout is noisy: about ±0.01 AUC). The cap is the smallest size that no larger
size beats by more than `--tolerance`, neither in median CV AUC nor in median holdout AUC.
`--compare-rows N` then runs the flow's split on an N-row month and trains the challenger on all
of its training split and on a sample of the cap's size (or `--cap`), both scored on the same 20%
holdout; `--sizes` with no sizes runs only that comparison.

Prints tables, writes a PNG (rows vs AUC and seconds, the cap marked) and a JSON under the state
dir (`$CHURN_RETRAIN_HOME/benchmarks/`) unless `--out` says where. PyCaret is imported before any
clock starts; training seconds include PyCaret's setup and the refit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"

if TYPE_CHECKING:
    import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[5_000, 10_000, 20_000, 50_000, 100_000, 200_000]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--data-seed", type=int, default=42, help="seed of the generated month")
    parser.add_argument("--period", default="2026-01")
    parser.add_argument("--holdout-rows", type=int, default=100_000)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the real Telco CSV")
    parser.add_argument("--csv-sizes", type=int, nargs="*", default=[1_000, 2_000, 3_500, 5_634])
    parser.add_argument("--tolerance", type=float, default=0.001, help="AUC gain that counts")
    parser.add_argument(
        "--compare-rows", type=int, default=0, help="month size for full vs sampled (0: skip)"
    )
    parser.add_argument("--cap", type=int, default=None, help="compare this cap, not the chosen")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNG and JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tasks.settings import Settings
    from tasks.training.model import keep_pycaret_quiet

    keep_pycaret_quiet()
    import pycaret.classification  # noqa: F401  (imported before any clock starts)

    out = args.out or Settings().home / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    generated = _generated_curve(args) if args.sizes else []
    telco = _telco_curve(args) if args.csv_sizes and args.csv.is_file() else []
    medians = _medians(generated)
    cap = args.cap or choose_cap(medians, args.tolerance)
    if generated:
        print(f"\ngenerated month {args.period}, {args.holdout_rows:,} holdout rows, {args.seeds=}")
        _print_table(medians, cap)
    if telco:
        print(f"\nreal Telco CSV ({args.csv.name}), its 80/20 split, seeds {args.seeds}")
        _print_table(_medians(telco), None)
    chosen = "given" if args.cap else f"no larger size beats it by > {args.tolerance} AUC"
    print(f"\ncap: {cap:,} rows ({chosen})" if cap else "\ncap: none (no plateau measured)")
    comparison = _compare(args, cap) if args.compare_rows and cap else None
    plot = out / "learning_curve.png"
    _plot(generated, telco, cap, plot)
    report = {"generated": generated, "telco": telco, "medians": medians, "cap": cap,
              "comparison": comparison, "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    (out / "learning_curve.json").write_text(json.dumps(report, indent=2))
    print(f"plot: {plot}\nfigures: {out / 'learning_curve.json'}")


def _generated_curve(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tasks.data.generate import generate_snapshot
    from tasks.decision.holdout import split_fair_holdout

    total = max(args.sizes) + args.holdout_rows
    month = generate_snapshot(args.period, rows=total, seed=args.data_seed)
    split = split_fair_holdout(month, fraction=args.holdout_rows / total, seed=args.data_seed)
    return [
        _train_and_score(split.train, split.holdout, rows=size, seed=seed, data="generated")
        for seed in args.seeds
        for size in sorted(args.sizes)
    ]


def _telco_curve(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tasks.data.parse import parse_snapshot
    from tasks.decision.holdout import split_fair_holdout

    frame = parse_snapshot(args.csv.read_bytes(), source=str(args.csv))
    split = split_fair_holdout(frame, fraction=0.2, seed=args.data_seed)
    sizes = sorted({min(s, len(split.train)) for s in args.csv_sizes})
    return [
        _train_and_score(split.train, split.holdout, rows=size, seed=seed, data="telco")
        for seed in args.seeds
        for size in sizes
    ]


def _train_and_score(
    pool: pd.DataFrame, holdout: pd.DataFrame, *, rows: int, seed: int, data: str
) -> dict[str, Any]:
    """The flow's sampler and training on `rows` of `pool`, scored on `holdout`."""
    from sklearn.metrics import roc_auc_score

    from tasks.data.schema import POSITIVE_LABEL, TARGET
    from tasks.training.sample import sample_training_rows
    from tasks.training.train import train_challenger

    train = sample_training_rows(pool, max_rows=rows, seed=seed).frame
    started = time.perf_counter()
    challenger = train_challenger.fn(train, seed=seed)
    seconds = time.perf_counter() - started
    truth = holdout[TARGET] == POSITIVE_LABEL
    auc = float(roc_auc_score(truth, challenger.model.predict_proba(holdout)))
    row = {
        "data": data,
        "seed": seed,
        "rows": len(train),
        "winner": challenger.algorithm,
        "cv_roc_auc": round(challenger.cv_metrics["roc_auc"], 4),
        "holdout_roc_auc": round(auc, 4),
        "train_seconds": round(seconds, 2),
    }
    print(
        f"{data:<9} seed {seed:>3} {len(train):>8,} rows  winner {challenger.algorithm:<9} "
        f"CV {row['cv_roc_auc']:.4f} holdout {auc:.4f} {seconds:7.1f} s",
        flush=True,
    )
    return row


def _medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size: the median over seeds, and the spread (max - min) of the holdout AUC."""
    out = []
    for size in sorted({r["rows"] for r in rows}):
        mine = [r for r in rows if r["rows"] == size]
        holdout = [r["holdout_roc_auc"] for r in mine]
        out.append(
            {
                "rows": size,
                "seeds": len(mine),
                "cv_roc_auc": round(statistics.median(r["cv_roc_auc"] for r in mine), 4),
                "holdout_roc_auc": round(statistics.median(holdout), 4),
                "holdout_spread": round(max(holdout) - min(holdout), 4),
                "train_seconds": round(statistics.median(r["train_seconds"] for r in mine), 1),
                "winners": sorted({r["winner"] for r in mine}),
            }
        )
    return out


def choose_cap(medians: list[dict[str, Any]], tolerance: float) -> int | None:
    """The smallest size no larger size beats by more than `tolerance`, in median CV AUC or
    median holdout AUC; None when only the largest size qualifies (no plateau measured)."""
    for i, point in enumerate(medians):
        later = medians[i + 1 :]
        if all(
            m[metric] - point[metric] <= tolerance
            for m in later
            for metric in ("cv_roc_auc", "holdout_roc_auc")
        ):
            return int(point["rows"]) if later else None
    return None


def _print_table(medians: list[dict[str, Any]], cap: int | None) -> None:
    print(f"{'rows':>9} {'CV AUC':>7} {'holdout':>8} {'spread':>7} {'train s':>8}  winner")
    for m in medians:
        mark = "  <- cap" if m["rows"] == cap else ""
        print(
            f"{m['rows']:>9,} {m['cv_roc_auc']:>7.4f} {m['holdout_roc_auc']:>8.4f} "
            f"{m['holdout_spread']:>7.4f} {m['train_seconds']:>8.1f}  "
            f"{','.join(m['winners'])}{mark}"
        )


def _compare(args: argparse.Namespace, cap: int) -> dict[str, Any]:
    """The flow's 80/20 split of an N-row month: all training rows vs a sample of `cap`."""
    from tasks.data.generate import generate_snapshot
    from tasks.decision.holdout import split_fair_holdout

    seed = args.seeds[0]
    month = generate_snapshot(args.period, rows=args.compare_rows, seed=args.data_seed)
    split = split_fair_holdout(month, fraction=0.2, seed=seed)
    del month
    print(f"\n{args.compare_rows:,}-row month, seed {seed}: full training split vs the cap")
    full = _train_and_score(split.train, split.holdout, rows=len(split.train), seed=seed,
                            data="full")  # fmt: skip
    sampled = _train_and_score(split.train, split.holdout, rows=cap, seed=seed, data="sampled")
    gap = sampled["holdout_roc_auc"] - full["holdout_roc_auc"]
    print(
        f"sampled - full holdout AUC: {gap:+.4f} on {len(split.holdout):,} holdout rows; "
        f"training {sampled['train_seconds']:.1f} s vs {full['train_seconds']:.1f} s"
    )
    return {"month_rows": args.compare_rows, "full": full, "sampled": sampled,
            "holdout_gap": round(gap, 4), "holdout_rows": len(split.holdout)}  # fmt: skip


def _plot(
    generated: list[dict[str, Any]], telco: list[dict[str, Any]], cap: int | None, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # PyCaret's import sets fonts this machine may not have; matplotlib's own is always there.
    plt.rcParams["font.sans-serif"] = ["DejaVu Sans"]
    fig, (auc_ax, time_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for rows, label, marker in ((generated, "generated", "o"), (telco, "real Telco", "s")):
        if not rows:
            continue
        med = _medians(rows)
        sizes = [m["rows"] for m in med]
        auc_ax.plot(sizes, [m["cv_roc_auc"] for m in med], marker=marker, ls="--",
                    label=f"{label}: CV")  # fmt: skip
        auc_ax.plot(sizes, [m["holdout_roc_auc"] for m in med], marker=marker,
                    label=f"{label}: holdout")  # fmt: skip
        auc_ax.scatter([r["rows"] for r in rows], [r["holdout_roc_auc"] for r in rows],
                       s=10, alpha=0.4, color="grey")  # fmt: skip
        time_ax.plot(sizes, [m["train_seconds"] for m in med], marker=marker, label=label)
    for ax in (auc_ax, time_ax):
        ax.set_xscale("log")
        ax.set_xlabel("training rows")
        ax.grid(True, alpha=0.3)
        if cap:
            ax.axvline(cap, color="red", ls=":", label=f"cap {cap:,}")
        ax.legend(fontsize=8)
    auc_ax.set_ylabel("ROC-AUC (median; grey: each seed, holdout)")
    time_ax.set_ylabel("training seconds (median)")
    fig.suptitle("Challenger learning curve (default models, the flow's training)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
