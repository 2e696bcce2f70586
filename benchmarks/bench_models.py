"""Quality per second of candidate model sets on the real Telco CSV (the default's evidence).

    make bench-models     # or: uv run python benchmarks/bench_models.py [--seeds 42 1 7]

For each seed, the flow's own stratified 80/20 split; for each model set, `train_challenger`
(PyCaret: derived features, z-scores, 5 folds, n_jobs=1) in this process, side by side: the
winner, its CV ROC-AUC, the holdout ROC-AUC of the refitted winner, and the training seconds.
PyCaret is imported once before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
MODEL_SETS: dict[str, list[str]] = {
    "lr": ["lr"],
    "lr+lightgbm (default)": ["lr", "lightgbm"],
    "lr+ada+lightgbm": ["lr", "ada", "lightgbm"],
    "lr+ada+gbc+rf+lightgbm": ["lr", "ada", "gbc", "rf", "lightgbm"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 7])
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "models.json"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from sklearn.metrics import roc_auc_score

    from tasks.data.parse import parse_snapshot
    from tasks.data.schema import POSITIVE_LABEL, TARGET
    from tasks.decision.holdout import split_fair_holdout
    from tasks.training.model import keep_pycaret_quiet
    from tasks.training.train import train_challenger

    keep_pycaret_quiet()
    import pycaret.classification  # noqa: F401  (imported before any clock starts)

    frame = parse_snapshot(args.csv.read_bytes(), source=str(args.csv))
    rows = []
    for seed in args.seeds:
        split = split_fair_holdout(frame, fraction=0.2, seed=seed)
        truth = split.holdout[TARGET] == POSITIVE_LABEL
        for label, models in MODEL_SETS.items():
            started = time.perf_counter()
            challenger = train_challenger.fn(split.train, seed=seed, models=models)
            seconds = time.perf_counter() - started
            holdout = roc_auc_score(truth, challenger.model.predict_proba(split.holdout))
            rows.append(
                {
                    "seed": seed,
                    "models": label,
                    "winner": challenger.algorithm,
                    "cv_roc_auc": challenger.cv_metrics["roc_auc"],
                    "holdout_roc_auc": round(float(holdout), 4),
                    "train_seconds": round(seconds, 2),
                }
            )
            print(
                f"seed {seed:>3} {label:<24} winner {challenger.algorithm:<9} "
                f"CV {challenger.cv_metrics['roc_auc']:.4f} holdout {holdout:.4f} "
                f"{seconds:6.1f} s",
                flush=True,
            )
    print(f"\n{'model set':<24} {'CV AUC':>7} {'holdout':>8} {'train s':>8}   (median over seeds)")
    summary = {}
    for label in MODEL_SETS:
        mine = [r for r in rows if r["models"] == label]
        summary[label] = {
            key: statistics.median(float(r[key]) for r in mine)
            for key in ("cv_roc_auc", "holdout_roc_auc", "train_seconds")
        }
        s = summary[label]
        print(
            f"{label:<24} {s['cv_roc_auc']:>7.4f} {s['holdout_roc_auc']:>8.4f} "
            f"{s['train_seconds']:>8.1f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": rows, "median": summary}, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
