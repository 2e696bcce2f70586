"""Decision-integrity benchmark: how often each promotion rule promotes, on the real Telco data.

    make bench-decision     # or: uv run python benchmarks/bench_decision.py [--trials 200]

Each trial draws a fresh stratified 80/20 split of the real CSV (1,409 holdout rows), trains a
champion and a challenger, scores both on the holdout and lets every rule decide on the same
numbers. Scenarios:

- equal-subsample: the same model class on two different random 80% subsamples of the training
  rows (a retrain with another seed); equal quality, so every promotion is a promotion on noise.
- equal-halves: the same, on two disjoint halves (more training noise; still equal in expectation).
- better-small-sample: the challenger trains on all 5,634 training rows, the champion on 300 of
  them (true AUC gap about 0.02-0.03).
- better-label-noise: the champion trains on all rows with 35% of labels flipped (gap about 0.02-0.03).

The statistic is what is being tested, so the models are plain scikit-learn logistic regression
on one-hot features (10 ms a fit) rather than PyCaret; the decision is `tasks.decision`'s.
The bootstrap intervals are computed once per trial (as the flow does, with the default rule's
resamples) and each rule decides on them. Targets for our default rule: at most 5% promotions
in the equal scenarios, at least 80% in the better ones. Prints a table; writes JSON (default
benchmarks/results/decision.json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.data.schema import CATEGORICAL_DOMAINS, FEATURES, POSITIVE_LABEL, TARGET  # noqa: E402
from tasks.decision.compare import evaluate  # noqa: E402
from tasks.decision.intervals import delong_difference  # noqa: E402
from tasks.decision.rule import DecisionRule  # noqa: E402
from tasks.decision.verdict import decide  # noqa: E402
from tasks.gate.parse import parse_snapshot  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
SMALL_SAMPLE = 300
LABEL_NOISE = 0.35

#: Rules compared on the same numbers. "ours" is the flow's default rule, unchanged.
RULES: dict[str, DecisionRule] = {
    "ours": DecisionRule(),
    "ours, no guardrails": DecisionRule(guardrails=()),
    "bootstrap, margin 0": DecisionRule(min_improvement=0.0, guardrails=()),
    "delong": DecisionRule(method="delong", guardrails=()),
    "point > 0": DecisionRule(method="point", min_improvement=0.0, guardrails=()),
    "point >= 0.005": DecisionRule(method="point", min_improvement=0.005, guardrails=()),
}

Array = npt.NDArray[np.float64]
Trainer = Callable[[npt.NDArray[np.intp], np.random.Generator], tuple[Array, Array]]


def _features(frame: pd.DataFrame) -> tuple[Array, npt.NDArray[np.int64]]:
    """One-hot categoricals and standardised numbers (blank TotalCharges as 0)."""
    features = frame[list(FEATURES)].assign(TotalCharges=frame["TotalCharges"].fillna(0.0))
    encoded = pd.get_dummies(features, columns=list(CATEGORICAL_DOMAINS), drop_first=True)
    encoded["log_tenure"] = np.log1p(encoded["tenure"])
    x = encoded.to_numpy(dtype=float)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    y = (frame[TARGET] == POSITIVE_LABEL).to_numpy().astype(np.int64)
    return x, y


def _fit(x: Array, y: npt.NDArray[np.int64]) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(x, y)


def _scenarios(x: Array, y: npt.NDArray[np.int64]) -> dict[str, Callable[..., tuple[Array, Array]]]:
    """Each scenario trains (challenger, champion) on the training rows and scores the holdout."""

    def proba(model: object, rows: npt.NDArray[np.intp]) -> Array:
        return np.asarray(model.predict_proba(x[rows])[:, 1])  # type: ignore[attr-defined]

    def equal_subsample(train, holdout, rng):  # type: ignore[no-untyped-def]
        size = int(0.8 * train.size)
        a, b = (rng.choice(train, size, replace=False) for _ in range(2))
        return proba(_fit(x[a], y[a]), holdout), proba(_fit(x[b], y[b]), holdout)

    def equal_halves(train, holdout, rng):  # type: ignore[no-untyped-def]
        shuffled = rng.permutation(train)
        a, b = shuffled[: train.size // 2], shuffled[train.size // 2 :]
        return proba(_fit(x[a], y[a]), holdout), proba(_fit(x[b], y[b]), holdout)

    def better_small(train, holdout, rng):  # type: ignore[no-untyped-def]
        small = rng.choice(train, SMALL_SAMPLE, replace=False)
        return proba(_fit(x[train], y[train]), holdout), proba(_fit(x[small], y[small]), holdout)

    def better_noise(train, holdout, rng):  # type: ignore[no-untyped-def]
        noisy = y[train].copy()
        flip = rng.random(train.size) < LABEL_NOISE
        noisy[flip] = 1 - noisy[flip]
        return proba(_fit(x[train], y[train]), holdout), proba(_fit(x[train], noisy), holdout)

    return {
        "equal-subsample": equal_subsample,
        "equal-halves": equal_halves,
        "better-small-sample": better_small,
        "better-label-noise": better_noise,
    }


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def run_scenario(
    name: str,
    trainer: Callable[..., tuple[Array, Array]],
    y: npt.NDArray[np.int64],
    *,
    trials: int,
    seed: int,
) -> dict[str, object]:
    """Promotion counts of every rule over `trials` fresh splits."""
    from sklearn.model_selection import train_test_split

    ours = RULES["ours"]
    promoted = dict.fromkeys(RULES, 0)
    gaps: list[float] = []
    started = time.perf_counter()
    for trial in range(trials):
        trial_seed = seed * 100_003 + trial
        rng = np.random.default_rng(trial_seed)
        train, holdout = train_test_split(
            np.arange(y.size), test_size=0.2, stratify=y, random_state=trial_seed % 2**32
        )
        challenger, champion = trainer(train, holdout, rng)
        # Exactly what the flow runs for the default rule ...
        evaluation = evaluate(
            ours, y[holdout], challenger, champion, seed=trial_seed, report_metrics=()
        )
        assert evaluation.champion is not None and evaluation.intervals is not None
        gaps.append(evaluation.challenger["roc_auc"] - evaluation.champion["roc_auc"])
        # ... and the other rules on the same numbers.
        delong = delong_difference(y[holdout], challenger, champion)
        for label, rule in RULES.items():
            if rule == ours:
                decision = evaluation.decision
            elif (rule.confidence, rule.n_bootstrap) != (ours.confidence, ours.n_bootstrap):
                decision = evaluate(
                    rule, y[holdout], challenger, champion, seed=trial_seed, report_metrics=()
                ).decision
            else:
                decision = decide(
                    rule,
                    evaluation.challenger,
                    evaluation.champion,
                    difference=delong
                    if rule.method == "delong"
                    else evaluation.intervals.difference[rule.metric],
                    guardrail_intervals=evaluation.intervals.difference,
                )
            promoted[label] += decision.promote
    rates = {}
    for label, count in promoted.items():
        low, high = _wilson(count, trials)
        rates[label] = {"promoted": count, "rate": count / trials, "ci95": [low, high]}
    return {
        "scenario": name,
        "trials": trials,
        "auc_gap_mean": float(np.mean(gaps)),
        "auc_gap_sd": float(np.std(gaps)),
        "seconds": round(time.perf_counter() - started, 1),
        "rates": rates,
    }


def _bootstrap_speed(y: npt.NDArray[np.int64], rule: DecisionRule) -> dict[str, float]:
    """Wall time of one decision's bootstrap on a Telco-sized holdout."""
    from tasks.decision.intervals import paired_bootstrap
    from tasks.decision.rule import METRICS

    rng = np.random.default_rng(0)
    holdout = rng.choice(y.size, round(0.2 * y.size), replace=False)
    labels = y[holdout]
    a = np.clip(labels * 0.3 + rng.random(labels.size) * 0.7, 0, 1)
    b = np.clip(labels * 0.25 + rng.random(labels.size) * 0.75, 0, 1)

    def median_seconds(metrics: tuple[str, ...]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            paired_bootstrap(labels, a, b, metrics=metrics, n_resamples=rule.n_bootstrap, seed=1)
            times.append(time.perf_counter() - started)
        return float(np.median(times))

    return {
        "n": int(labels.size),
        "b": rule.n_bootstrap,
        "rule_s": median_seconds(rule.metrics),
        "all_s": median_seconds(METRICS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--trials", type=int, default=200, help="trials per scenario (200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", help="comma-separated subset of the scenarios")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "decision.json"
    )
    args = parser.parse_args()

    frame = parse_snapshot(args.csv.read_bytes(), source=str(args.csv))
    x, y = _features(frame)
    scenarios = _scenarios(x, y)
    chosen = args.scenarios.split(",") if args.scenarios else list(scenarios)
    rule = RULES["ours"]
    print(
        f"Decision integrity on {args.csv.name}: {y.size:,} rows, holdout {round(0.2 * y.size):,}, "
        f"{args.trials} trials per scenario\nour rule: {rule.describe()}\n"
    )
    speed = _bootstrap_speed(y, rule)
    print(
        "paired bootstrap, {n:,} rows x {b:,} resamples: {rule_s:.2f} s for the rule's metrics, "
        "{all_s:.2f} s for all 8 (median of 5)\n".format(**speed)
    )
    width = max(len(label) for label in RULES) + 2
    print(f"{'scenario':<22}{'AUC gap':>17}" + "".join(f"{label:>{width}}" for label in RULES))
    results, failures = [], []
    for name in chosen:
        result = run_scenario(name, scenarios[name], y, trials=args.trials, seed=args.seed)
        results.append(result)
        rates = result["rates"]
        assert isinstance(rates, dict)
        gap = f"{result['auc_gap_mean']:+.4f}±{result['auc_gap_sd']:.4f}"
        cells = "".join(f"{rates[label]['rate']:>{width}.1%}" for label in RULES)
        print(f"{name:<22}{gap:>17}{cells}   ({result['seconds']} s)", flush=True)
        ours_rate = rates["ours"]["rate"]
        if name.startswith("equal") and ours_rate > 0.05:
            failures.append(f"{name}: ours promotes {ours_rate:.1%} > 5%")
        if name.startswith("better") and ours_rate < 0.80:
            failures.append(f"{name}: ours promotes {ours_rate:.1%} < 80%")
    print(
        "\nAUC gap: challenger - champion on the holdout, mean ± SD over trials. Rates are "
        "promotions / trials (95% Wilson intervals in the JSON)."
    )
    print("targets (ours): equal <= 5%, better >= 80%: " + ("; ".join(failures) or "met"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "csv": str(args.csv),
                "rows": int(y.size),
                "trials": args.trials,
                "seed": args.seed,
                "rules": {k: v.model_dump(mode="json") for k, v in RULES.items()},
                "bootstrap_seconds": speed,
                "scenarios": results,
                "targets_met": not failures,
            },
            indent=2,
        )
    )
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
