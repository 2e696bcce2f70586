"""Decision-integrity benchmark: how often each promotion rule promotes, on the real Telco data.

    make bench-decision     # or: uv run python benchmarks/bench_decision.py [--trials 200]
                            #     [--metrics roc_auc,recall_at_capacity] [--scenarios ...]

Each trial draws a fresh stratified 80/20 split of the real CSV (1,409 holdout rows), trains a
champion and a challenger, scores both on the holdout and lets every rule decide on the same
numbers. Scenarios:

- equal-subsample: the same model class on two different random 80% subsamples of the training
  rows (a retrain with another seed); equal quality, so every promotion is a promotion on noise.
- equal-halves: the same, on two disjoint halves (more training noise; still equal in expectation).
- better-small-sample: the challenger trains on all 5,634 training rows, the champion on 300 of
  them (true AUC gap about 0.02-0.03).
- better-label-noise: the champion trains on all rows with 35% of labels flipped (gap about 0.02-0.03).

Rules come in families, one table each, by the metric they rank on (`--metrics` picks some):
roc_auc (the flow's default rule against DeLong and point estimates), and the campaign's
metrics at its capacity (the top 10% by churn probability): recall_at_capacity,
lift_at_capacity and retention_value_at_capacity (save rate x 12 x MonthlyCharges of the
churners on the list, minus the contact costs, per scored customer). Each capacity family has
its default rule (`DecisionRule(metric=M)`), the same without guardrails, the same with
candidate margins, and the point estimate. Each table prints the mean ± SD over trials of the
challenger - champion difference in its metric: how big "better" is in that metric.

The statistic is what is being tested, so the models are plain scikit-learn logistic regression
on one-hot features (10 ms a fit) rather than PyCaret; the decision is `tasks.decision`'s.
The campaign's terms on each holdout come from its rows (`campaign_terms`, as the flow does).
The bootstrap intervals of every metric are computed once per trial (one `evaluate` of the
flow's default rule, with the default rule's resamples) and each rule decides on them.
Targets for each family's default rule: at most 5% promotions in the equal scenarios, at least
80% in the better ones; for the capacity families the margins that meet both are named. Prints
the tables; writes JSON (default benchmarks/results/decision.json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.data.parse import parse_snapshot  # noqa: E402
from tasks.data.schema import CATEGORICAL_DOMAINS, FEATURES, POSITIVE_LABEL, TARGET  # noqa: E402
from tasks.decision.compare import campaign_terms, evaluate  # noqa: E402
from tasks.decision.intervals import Interval, delong_difference  # noqa: E402
from tasks.decision.rule import DecisionRule, Metric  # noqa: E402
from tasks.decision.verdict import decide  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"
SMALL_SAMPLE = 300
LABEL_NOISE = 0.35
MAX_EQUAL_RATE = 0.05
MIN_BETTER_RATE = 0.80

#: The flow's default rule: the one `evaluate` runs per trial, whose intervals all rules share.
FLOW_RULE = DecisionRule()

#: AUC rules compared on the same numbers. "ours" is the flow's default rule, unchanged.
AUC_RULES: dict[str, DecisionRule] = {
    "ours": FLOW_RULE,
    "ours, no guardrails": DecisionRule(guardrails=()),
    "bootstrap, margin 0": DecisionRule(min_improvement=0.0, guardrails=()),
    "delong": DecisionRule(method="delong", guardrails=()),
    "point > 0": DecisionRule(method="point", min_improvement=0.0, guardrails=()),
    "point >= 0.005": DecisionRule(method="point", min_improvement=0.005, guardrails=()),
}

#: Candidate margins per capacity metric, in its units. The list size, the churners and the rows
#: are fixed in every stratified resample, so lift is recall x rows / list (about 10 x recall
#: at 10%): its margins 0.02-0.1 are recall's 0.002-0.01. Retention value is currency per scored
#: customer (about 10-20 on Telco), so its margins are on another scale.
CAPACITY_MARGINS: dict[Metric, tuple[float, ...]] = {
    "recall_at_capacity": (0.0, 0.002, 0.005, 0.01),
    "lift_at_capacity": (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
    "retention_value_at_capacity": (0.0, 0.05, 0.1, 0.25, 0.5),
}


def _capacity_rules(metric: Metric) -> dict[str, DecisionRule]:
    """The default rule ranking by `metric`, without guardrails, with each margin, and point."""
    ours = DecisionRule(metric=metric)
    rules = {"ours": ours, "ours, no guardrails": DecisionRule(metric=metric, guardrails=())}
    for margin in CAPACITY_MARGINS[metric]:
        if margin != ours.min_improvement:  # that candidate is "ours" itself
            rules[f"margin {margin:g}"] = DecisionRule(metric=metric, min_improvement=margin)
    rules["point > 0"] = DecisionRule(
        metric=metric, method="point", min_improvement=0.0, guardrails=()
    )
    return rules


#: Rule families by the metric they rank on; each is one table.
RULES: dict[str, dict[str, DecisionRule]] = {
    "roc_auc": AUC_RULES,
    **{metric: _capacity_rules(metric) for metric in CAPACITY_MARGINS},
}

GAP_TITLES = {
    "roc_auc": "AUC gap",
    "recall_at_capacity": "recall gap",
    "lift_at_capacity": "lift gap",
    "retention_value_at_capacity": "value gap",
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
    frame: pd.DataFrame,
    *,
    families: Mapping[str, Mapping[str, DecisionRule]],
    trials: int,
    seed: int,
) -> dict[str, object]:
    """Promotion counts of every rule of `families` over `trials` fresh splits."""
    from sklearn.model_selection import train_test_split

    ours = FLOW_RULE
    # Every rule reads the flow's campaign, so one set of terms per holdout serves them all.
    assert all(r.campaign == ours.campaign for rules in families.values() for r in rules.values())
    # The flow's rule reads roc_auc, recall_at_capacity and brier; the families add their own.
    extra = tuple(m for m in families if m not in ours.metrics)
    promoted = {metric: dict.fromkeys(rules, 0) for metric, rules in families.items()}
    gaps: dict[str, list[float]] = {metric: [] for metric in families}
    # Half-widths of the intervals the rules read: a gap well under them cannot be detected.
    widths: dict[str, list[float]] = {metric: [] for metric in families}
    started = time.perf_counter()
    for trial in range(trials):
        trial_seed = seed * 100_003 + trial
        rng = np.random.default_rng(trial_seed)
        train, holdout = train_test_split(
            np.arange(y.size), test_size=0.2, stratify=y, random_state=trial_seed % 2**32
        )
        challenger, champion = trainer(train, holdout, rng)
        # The campaign on this holdout as the flow builds it: its rows' MonthlyCharges give
        # each customer's value, which retention_value_at_capacity needs.
        terms, _ = campaign_terms(ours, frame.iloc[holdout])
        # Exactly what the flow runs for the default rule, plus the families' metrics on the
        # same resamples (the resamples depend on the seed and labels only, not the metrics).
        evaluation = evaluate(
            ours, y[holdout], challenger, champion, seed=trial_seed, report_metrics=extra,
            terms=terms,
        )  # fmt: skip
        assert evaluation.champion is not None and evaluation.intervals is not None
        for metric in families:
            gaps[metric].append(evaluation.challenger[metric] - evaluation.champion[metric])
            interval = evaluation.intervals.difference[metric]
            widths[metric].append((interval.upper - interval.lower) / 2)
        # ... and the other rules on the same numbers.
        delong = (
            delong_difference(y[holdout], challenger, champion) if "roc_auc" in families else None
        )
        for metric, rules in families.items():
            for label, rule in rules.items():
                if rule == ours:
                    decision = evaluation.decision
                elif (rule.confidence, rule.n_bootstrap) != (ours.confidence, ours.n_bootstrap):
                    decision = evaluate(
                        rule, y[holdout], challenger, champion, seed=trial_seed,
                        report_metrics=(), terms=terms,
                    ).decision  # fmt: skip
                else:
                    difference: Interval | None = (
                        delong
                        if rule.method == "delong"
                        else evaluation.intervals.difference[rule.metric]
                    )
                    decision = decide(
                        rule,
                        evaluation.challenger,
                        evaluation.champion,
                        difference=difference,
                        guardrail_intervals=evaluation.intervals.difference,
                    )
                promoted[metric][label] += decision.promote
    rates: dict[str, dict[str, dict[str, object]]] = {}
    for metric, counts in promoted.items():
        rates[metric] = {}
        for label, count in counts.items():
            low, high = _wilson(count, trials)
            rates[metric][label] = {"promoted": count, "rate": count / trials, "ci95": [low, high]}
    gap_stats = {
        m: {"mean": float(np.mean(g)), "sd": float(np.std(g)), "ci_half": float(np.mean(widths[m]))}
        for m, g in gaps.items()
    }
    result: dict[str, object] = {"scenario": name, "trials": trials}
    if "roc_auc" in families:  # the keys the AUC-only benchmark wrote, kept for its readers
        result |= {
            "auc_gap_mean": gap_stats["roc_auc"]["mean"],
            "auc_gap_sd": gap_stats["roc_auc"]["sd"],
            "rates": rates["roc_auc"],
        }
    return result | {
        "gaps": gap_stats,
        "rates_by_metric": rates,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _bootstrap_speed(
    y: npt.NDArray[np.int64], frame: pd.DataFrame, rule: DecisionRule
) -> dict[str, float]:
    """Wall time of one decision's bootstrap on a Telco-sized holdout."""
    from tasks.decision.intervals import paired_bootstrap
    from tasks.decision.rule import METRICS

    rng = np.random.default_rng(0)
    holdout = rng.choice(y.size, round(0.2 * y.size), replace=False)
    labels = y[holdout]
    # Capacity metrics need the campaign's list size, retention value each customer's value.
    terms, _ = campaign_terms(rule, frame.iloc[holdout])
    a = np.clip(labels * 0.3 + rng.random(labels.size) * 0.7, 0, 1)
    b = np.clip(labels * 0.25 + rng.random(labels.size) * 0.75, 0, 1)

    def median_seconds(metrics: tuple[str, ...]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            paired_bootstrap(
                labels, a, b, metrics=metrics, n_resamples=rule.n_bootstrap, seed=1, terms=terms
            )
            times.append(time.perf_counter() - started)
        return float(np.median(times))

    return {
        "n": int(labels.size),
        "b": rule.n_bootstrap,
        "metrics": len(METRICS),
        "rule_s": median_seconds(rule.metrics),
        "all_s": median_seconds(METRICS),
    }


def _margin_summary(
    rules: Mapping[str, DecisionRule], results: list[dict[str, object]], metric: str
) -> tuple[list[dict[str, object]], list[float]]:
    """Each candidate margin of the guarded bootstrap rule: its worst equal and better rates,
    and the margins that meet both targets over the scenarios run."""
    ours = rules["ours"]
    candidates = {
        label: rule
        for label, rule in rules.items()
        if rule.method == "bootstrap" and rule.guardrails == ours.guardrails
    }
    rows, meeting = [], []
    for label, rule in sorted(candidates.items(), key=lambda item: item[1].min_improvement):
        by_kind: dict[str, list[float]] = {"equal": [], "better": []}
        for result in results:
            rates = result["rates_by_metric"]
            assert isinstance(rates, dict)
            kind = "equal" if str(result["scenario"]).startswith("equal") else "better"
            by_kind[kind].append(rates[metric][label]["rate"])
        equal_max = max(by_kind["equal"], default=math.nan)
        better_min = min(by_kind["better"], default=math.nan)
        met = (not by_kind["equal"] or equal_max <= MAX_EQUAL_RATE) and (
            not by_kind["better"] or better_min >= MIN_BETTER_RATE
        )
        rows.append(
            {
                "margin": rule.min_improvement,
                "rule": label,
                "equal_max": equal_max,
                "better_min": better_min,
                "targets_met": met,
            }
        )
        if met:
            meeting.append(rule.min_improvement)
    return rows, meeting


def _print_table(
    metric: str, rules: Mapping[str, DecisionRule], results: list[dict[str, object]]
) -> list[str]:
    """One family's table; returns the default rule's missed targets."""
    width = {label: max(len(label), 7) + 2 for label in rules}
    digits = 3 if metric == "retention_value_at_capacity" else 4
    title = GAP_TITLES[metric]
    gap_width = 17
    print(f"\nranked by {metric}: {rules['ours'].describe()}")
    print(
        f"{'scenario':<22}{title:>{gap_width}}{'95% CI ±':>11}"
        + "".join(f"{label:>{width[label]}}" for label in rules)
    )
    failures = []
    for result in results:
        name = str(result["scenario"])
        gaps, rates = result["gaps"], result["rates_by_metric"]
        assert isinstance(gaps, dict) and isinstance(rates, dict)
        gap = f"{gaps[metric]['mean']:+.{digits}f}±{gaps[metric]['sd']:.{digits}f}"
        cells = "".join(f"{rates[metric][label]['rate']:>{width[label]}.1%}" for label in rules)
        half = f"{gaps[metric]['ci_half']:.{digits}f}"
        print(f"{name:<22}{gap:>{gap_width}}{half:>11}{cells}")
        ours_rate = rates[metric]["ours"]["rate"]
        if name.startswith("equal") and ours_rate > MAX_EQUAL_RATE:
            failures.append(f"{name}: ours promotes {ours_rate:.1%} > {MAX_EQUAL_RATE:.0%}")
        if name.startswith("better") and ours_rate < MIN_BETTER_RATE:
            failures.append(f"{name}: ours promotes {ours_rate:.1%} < {MIN_BETTER_RATE:.0%}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--trials", type=int, default=200, help="trials per scenario (200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", help="comma-separated subset of the scenarios")
    parser.add_argument(
        "--metrics",
        help=f"comma-separated subset of the rule families ({', '.join(RULES)}; default all)",
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "decision.json"
    )
    args = parser.parse_args()

    frame = parse_snapshot(args.csv.read_bytes(), source=str(args.csv))
    x, y = _features(frame)
    scenarios = _scenarios(x, y)
    chosen = args.scenarios.split(",") if args.scenarios else list(scenarios)
    metrics = args.metrics.split(",") if args.metrics else list(RULES)
    for kind, names, known in (("scenario", chosen, scenarios), ("metric", metrics, RULES)):
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}")
    families = {metric: RULES[metric] for metric in metrics}
    print(
        f"Decision integrity on {args.csv.name}: {y.size:,} rows, holdout {round(0.2 * y.size):,}, "
        f"{args.trials} trials per scenario\nflow's rule: {FLOW_RULE.describe()}\n"
    )
    speed = _bootstrap_speed(y, frame, FLOW_RULE)
    print(
        "paired bootstrap, {n:,} rows x {b:,} resamples: {rule_s:.2f} s for the rule's metrics, "
        "{all_s:.2f} s for all {metrics} (median of 5)".format(**speed)
    )
    started = time.perf_counter()
    results: list[dict[str, object]] = []
    for name in chosen:
        result = run_scenario(
            name, scenarios[name], y, frame, families=families, trials=args.trials, seed=args.seed
        )
        results.append(result)
        print(f"  {name}: {args.trials} trials in {result['seconds']} s", flush=True)
    summary: dict[str, dict[str, object]] = {}
    for metric, rules in families.items():
        failures = _print_table(metric, rules, results)
        summary[metric] = {
            "rules": {k: v.model_dump(mode="json") for k, v in rules.items()},
            "failures": failures,
            "targets_met": not failures,
        }
        print(
            f"targets ({metric}, ours): equal <= {MAX_EQUAL_RATE:.0%}, better >= "
            f"{MIN_BETTER_RATE:.0%}: " + ("; ".join(failures) or "met")
        )
        if metric == "roc_auc":
            continue
        rows, meeting = _margin_summary(rules, results, metric)
        summary[metric] |= {"margins": rows, "margins_meeting_targets": meeting}
        shown = ", ".join(
            f"{row['margin']:g} (equal max {row['equal_max']:.1%}, better min "
            f"{row['better_min']:.1%})"
            for row in rows
        )
        best = f"smallest meeting both: {min(meeting):g}" if meeting else "none meets both"
        print(f"margins with ours' guardrails: {shown}; {best}")
    elapsed = time.perf_counter() - started
    print(
        "\nGap: challenger - champion in the table's metric on the holdout, mean ± SD over "
        "trials (retention value per scored customer); 95% CI ±: mean half-width of the paired "
        "bootstrap interval of that difference the rules read. Rates are promotions / trials (95% "
        "Wilson intervals in the JSON). margin M: ours with margin M (same guardrails); "
        f"point > 0: the point estimate alone, no guardrails.\nwall time {elapsed:.0f} s "
        f"({len(chosen) * args.trials} trials)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "csv": str(args.csv),
                "rows": int(y.size),
                "trials": args.trials,
                "seed": args.seed,
                "rules": {k: v.model_dump(mode="json") for k, v in AUC_RULES.items()},
                "bootstrap_seconds": speed,
                "seconds": round(elapsed, 1),
                "scenarios": results,
                "families": summary,
                "targets_met": all(s["targets_met"] for s in summary.values()),
            },
            indent=2,
        )
    )
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
