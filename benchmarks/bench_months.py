"""A record over many months: how the promotion rule behaves across years of monthly retrains.

    make bench-months       # or: uv run python benchmarks/bench_months.py [--quick] [--seed 0]

A churn team lives through years of monthly decisions, so a rule is judged by its record:

- noise: 20 years (240 months) of generated months with no real change. Every promotion is a
  promotion on noise; the count per 240 months is what the team would see.
- change (a): at a random calendar month the world changes (`contract_shock`, a step to the
  strength that costs the old champion ROC-AUC 0.02 against a fresh retrain), judged by the
  default rule. How many months until the rule promotes (the month of the change is month 1)?
- change (b): the same with the strength that costs the old champion 10% of its retention value
  at capacity, judged by the default rule with metric retention_value_at_capacity.

Each month is what the flow does with it: `generate_snapshot` (one customer base per chain,
about 96% of customers shared month to month, a fresh churn label every month), the fair holdout
drawn away from the champion's training customers (`split_fair_holdout`, the flow's seed every
month), a challenger trained on the rest, both scored on the holdout and judged by
`tasks.decision`'s own `evaluate` / `decide`. The models are plain logistic regression on
one-hot features (the statistic is what is being tested, as in bench_decision.py); the champion
is the model the rule last promoted, so each rule lives its own chain. Rules whose champions
agree share the month's comparison and its bootstrap (cached per champion and month).

Rules compared: "ours" (`DecisionRule()`; for (b) with metric retention_value_at_capacity),
"point >" (point estimate > 0, no guardrails), "always latest" (every retrain is promoted:
240 promotions per 240 months and month 1, by definition, not simulated) and candidate variants
written here as small policies over the monthly numbers: a stricter confidence (99%, 99.5%), a
confirmation month (this month's and last month's challenger both clear the rule against the
same champion) and two months' paired differences pooled by inverse variance (each month's
bootstrap interval read as normal) or one month alone at a stricter confidence.

Targets for our default rule: at most 1 promotion on noise per 240 months, and a real change
promoted within 2 months in at least 80% of chains. Prints the calibration and a table; writes
JSON and a PNG (default benchmarks/results/months.json and months.png).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.data.generate import generate_snapshot  # noqa: E402
from tasks.data.schema import CATEGORICAL_DOMAINS, ID_COLUMN, POSITIVE_LABEL, TARGET  # noqa: E402
from tasks.decision.compare import Evaluation, campaign_terms, evaluate  # noqa: E402
from tasks.decision.holdout import (  # noqa: E402
    TrainingIds,
    hash_ids,
    holdout_cap,
    id_set_digest,
    split_fair_holdout,
)
from tasks.decision.intervals import Interval  # noqa: E402
from tasks.decision.metrics import ListTerms, holdout_metrics  # noqa: E402
from tasks.decision.rule import DecisionRule, Metric  # noqa: E402
from tasks.decision.verdict import Decision, decide  # noqa: E402

Array = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]

ROWS = 7043
HOLDOUT_FRACTION = 0.2
SCENARIO = "contract_shock"
NOISE_START = (2001 - 2020) * 12  # 2001-01, in months since 2020-01 (the generator's epoch)
CHANGE_RANGE = ((2001 - 2020) * 12 + 2, (2098 - 2020) * 12)  # where a change month may fall
MONTHS_PER_RECORD = 240
TARGET_AUC_GAP = 0.02  # change (a): fresh retrain - old champion, ROC-AUC
TARGET_VALUE_GAIN = 0.10  # change (b): (fresh - old champion) / old champion, retention value
GOAL_NOISE = 1.0  # promotions on noise per 240 months, at most
GOAL_WITHIN, GOAL_SHARE = 2, 0.80  # a real change promoted within 2 months in >= 80% of chains
#: Step strengths tried when calibrating: fine up to 0.6, where both changes' targets fall.
CALIBRATION_DRIFTS = (*(round(0.05 * i, 2) for i in range(13)), 0.7, 1.0)
VALUE_METRIC: Metric = "retention_value_at_capacity"
#: The rule family a chain's rules rank by: roc_auc (noise and change a), value (noise and b).
FAMILIES: dict[str, Metric] = {"auc": "roc_auc", "value": VALUE_METRIC}
#: Metrics every shared bootstrap also computes, so both families decide on the same resamples.
SHARED_METRICS = (VALUE_METRIC,)
#: The confidence every month is bootstrapped at; stricter rules are only checked where it clears.
SCREEN_CONFIDENCE = DecisionRule().confidence
ALWAYS_LATEST = "always latest"
_NUMERIC = ("SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges")


# --- models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """Logistic regression on one-hot features, standardised by its training rows' statistics,
    and the hashed IDs of the customers it trained on (the flow stores them with the model)."""

    key: int
    coef: Array = field(repr=False)
    intercept: float
    mean: Array = field(repr=False)
    scale: Array = field(repr=False)
    ids: TrainingIds = field(repr=False)

    def proba(self, x: Array) -> Array:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=float)


def encode(frame: pd.DataFrame) -> Array:
    """Raw features: numbers (blank TotalCharges as 0, log tenure) and one-hot categoricals
    against the schema's fixed domains, so every month has the same columns in the same order."""
    tenure = frame["tenure"].to_numpy(float)
    columns = [np.nan_to_num(frame[c].to_numpy(float)) for c in _NUMERIC]
    columns.append(np.log1p(tenure))
    for name, domain in CATEGORICAL_DOMAINS.items():
        values = frame[name].to_numpy()
        columns.extend(values == level for level in domain[1:])
    return np.column_stack(columns).astype(float)


def fit_model(x: Array, y: Labels, hashes: npt.NDArray[np.uint64], key: int) -> Model:
    from sklearn.linear_model import LogisticRegression

    mean, sd = x.mean(axis=0), x.std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)
    fitted = LogisticRegression(max_iter=2000).fit((x - mean) / scale, y)
    unique = np.unique(hashes)
    return Model(
        key=key,
        coef=fitted.coef_[0].astype(float),
        intercept=float(fitted.intercept_[0]),
        mean=mean,
        scale=scale,
        ids=TrainingIds(unique, id_set_digest(unique)),
    )


# --- one month ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """One generated month, encoded once for every champion compared on it."""

    frame: pd.DataFrame = field(repr=False)
    x: Array = field(repr=False)
    y: Labels = field(repr=False)
    hashes: npt.NDArray[np.uint64] = field(repr=False)
    cap: int | None


def period(index: int) -> str:
    """The period ("YYYY-MM") of a month counted from 2020-01 (negative: before it)."""
    year, month = divmod(index, 12)
    return f"{2020 + year:04d}-{month + 1:02d}"


def load_month(index: int, *, data_seed: int, drift: float) -> Month:
    frame = generate_snapshot(
        period(index),
        seed=data_seed,
        rows=ROWS,
        drift=drift,
        scenario=SCENARIO if drift > 0 else "none",
    )
    return Month(
        frame=frame,
        x=encode(frame),
        y=(frame[TARGET] == POSITIVE_LABEL).to_numpy().astype(np.int64),
        hashes=hash_ids(frame[ID_COLUMN]),
        cap=holdout_cap(DecisionRule(), frame[TARGET]),  # as the flow passes it (no cap at 7k)
    )


def first_champion(month: Month, *, seed: int, key: int) -> Model:
    """The first month: no champion, a plain stratified holdout; its challenger is promoted."""
    split = split_fair_holdout(
        month.frame, fraction=HOLDOUT_FRACTION, seed=seed, max_rows=month.cap
    )
    rows = split.train_positions
    return fit_model(month.x[rows], month.y[rows], month.hashes[rows], key)


class Comparison:
    """One month's challenger against one champion on the month's fair holdout.

    Decisions are computed on demand and cached: a bootstrap per confidence (the resamples
    depend only on the seed and the labels, so one bootstrap serves every rule and metric at
    that confidence), `decide` for each rule on its intervals.
    """

    def __init__(self, month: Month, champion: Model, *, seed: int, key: int) -> None:
        split = split_fair_holdout(
            month.frame,
            fraction=HOLDOUT_FRACTION,
            seed=seed,
            champion_ids=champion.ids,
            max_rows=month.cap,
        )
        train = split.train_positions
        holdout = np.setdiff1d(np.arange(len(month.frame)), train, assume_unique=True)
        # The holdout frame keeps the snapshot's row order: its rows are `holdout`, in order.
        assert np.array_equal(
            split.holdout[ID_COLUMN].to_numpy(), month.frame[ID_COLUMN].to_numpy()[holdout]
        )
        self.seed = seed
        self.challenger = fit_model(month.x[train], month.y[train], month.hashes[train], key)
        self.y = month.y[holdout]
        self.challenger_proba = self.challenger.proba(month.x[holdout])
        self.champion_proba = champion.proba(month.x[holdout])
        self.terms: ListTerms = campaign_terms(
            DecisionRule(), split.holdout, population=len(month.frame)
        )[0]
        self.bootstraps = 0
        self._carriers: dict[tuple[float, int], tuple[DecisionRule, Evaluation]] = {}
        self._decisions: dict[DecisionRule, Decision] = {}

    def evaluate(self, rule: DecisionRule, *, report: Sequence[str] = ()) -> Evaluation:
        """Exactly the flow's comparison under `rule` (a bootstrap unless rule.method is point)."""
        self.bootstraps += rule.method == "bootstrap"
        return evaluate(
            rule,
            self.y,
            self.challenger_proba,
            self.champion_proba,
            seed=self.seed,
            report_metrics=report,
            terms=self.terms,
        )

    def _carrier(self, confidence: float, resamples: int) -> tuple[DecisionRule, Evaluation]:
        key = (confidence, resamples)
        if key not in self._carriers:
            carrier = DecisionRule(confidence=confidence, n_bootstrap=resamples)
            self._carriers[key] = (carrier, self.evaluate(carrier, report=SHARED_METRICS))
        return self._carriers[key]

    def shared(self, rule: DecisionRule) -> Evaluation:
        """The bootstrap `rule`'s decision reads (both models' metrics and intervals)."""
        return self._carrier(rule.confidence, rule.n_bootstrap)[1]

    def decision(self, rule: DecisionRule) -> Decision:
        if rule not in self._decisions:
            if rule.method != "bootstrap":
                self._decisions[rule] = self.evaluate(rule).decision
            else:
                carrier, shared = self._carrier(rule.confidence, rule.n_bootstrap)
                assert shared.intervals is not None and shared.champion is not None
                self._decisions[rule] = (
                    shared.decision
                    if rule == carrier
                    else decide(
                        rule,
                        shared.challenger,
                        shared.champion,
                        difference=shared.intervals.difference[rule.metric],
                        guardrail_intervals=shared.intervals.difference,
                    )
                )
        return self._decisions[rule]

    def promotes(self, rule: DecisionRule) -> bool:
        if rule.method == "bootstrap" and rule.confidence > SCREEN_CONFIDENCE:
            # The same resamples at a lower confidence give a higher lower bound and the same
            # point checks: if the screen does not promote, the stricter rule cannot.
            screen = rule.model_copy(update={"confidence": SCREEN_CONFIDENCE})
            if not self.decision(screen).promote:
                return False
        return self.decision(rule).promote

    def point_metrics(self) -> tuple[dict[str, float], dict[str, float]]:
        """Both models' holdout metrics (no bootstrap): challenger, champion."""
        return (
            holdout_metrics(self.y, self.challenger_proba, terms=self.terms),
            holdout_metrics(self.y, self.champion_proba, terms=self.terms),
        )


# --- policies ---------------------------------------------------------------------------------

#: A policy reads this month's and earlier comparisons against the current champion (oldest
#: first, at most two) and says whether this month's challenger is promoted.
Policy = Callable[[Sequence[Comparison]], bool]


def per_month(rule: DecisionRule) -> Policy:
    """The rule as the flow applies it: this month's comparison alone."""
    return lambda history: history[-1].promotes(rule)


def confirmed(rule: DecisionRule) -> Policy:
    """This month's challenger clears the rule and last month's (same champion) did too."""
    return lambda history: (
        len(history) >= 2 and history[-1].promotes(rule) and history[-2].promotes(rule)
    )


def pooled(rule: DecisionRule, pool_confidence: float, single: DecisionRule) -> Policy:
    """This month alone clears `single`, or this and last month's paired differences (same
    champion), pooled by inverse variance, clear the rule's margin at `pool_confidence`.

    Each month's bootstrap interval is read as normal: SE = (upper - lower) / (2 z). The pooled
    interval goes through `decide` with this month's numbers, so floor and guardrails still hold.
    """
    z = NormalDist().inv_cdf((1 + rule.confidence) / 2)
    z_pool = NormalDist().inv_cdf((1 + pool_confidence) / 2)

    def policy(history: Sequence[Comparison]) -> bool:
        latest = history[-1]
        if latest.promotes(single):
            return True
        known = [i for c in history[-2:] if (i := c.decision(rule).interval) is not None]
        if len(history) < 2 or len(known) < 2:
            return False
        weights = [(2 * z / max(i.upper - i.lower, 1e-12)) ** 2 for i in known]
        estimate = sum(w * i.estimate for w, i in zip(weights, known, strict=True)) / sum(weights)
        half = z_pool / math.sqrt(sum(weights))
        difference = Interval(
            estimate=estimate,
            lower=estimate - half,
            upper=estimate + half,
            confidence=pool_confidence,
            method="two months pooled (inverse variance, normal)",
        )
        evaluation = latest.shared(rule)
        assert evaluation.champion is not None and evaluation.intervals is not None
        return decide(
            rule,
            evaluation.challenger,
            evaluation.champion,
            difference=difference,
            guardrail_intervals=evaluation.intervals.difference,
        ).promote

    return policy


def _variants() -> dict[str, Callable[[Metric], Policy]]:
    """The compared rules by name, each built for a metric (roc_auc or retention value)."""
    return {
        "ours": lambda m: per_month(DecisionRule(metric=m)),
        "point >": lambda m: per_month(
            DecisionRule(metric=m, method="point", min_improvement=0.0, guardrails=())
        ),
        "ours @99%": lambda m: per_month(DecisionRule(metric=m, confidence=0.99)),
        "ours @99.5%": lambda m: per_month(DecisionRule(metric=m, confidence=0.995)),
        "confirm 2 months": lambda m: confirmed(DecisionRule(metric=m)),
        "pool 2 @99% | 1 @99.5%": lambda m: pooled(
            DecisionRule(metric=m), 0.99, DecisionRule(metric=m, confidence=0.995)
        ),
        "pool 2 @99.5% | 1 @99.9%": lambda m: pooled(
            DecisionRule(metric=m), 0.995, DecisionRule(metric=m, confidence=0.999)
        ),
    }


VARIANTS = tuple(_variants())
RULE_NAMES = (*VARIANTS[:2], ALWAYS_LATEST, *VARIANTS[2:])


# --- chains -----------------------------------------------------------------------------------

Kind = Literal["noise", "a", "b", "calibration"]
_KIND_CODES: dict[str, int] = {"noise": 1, "a": 2, "b": 3, "calibration": 4}
_POINT = "point >"


@dataclass(frozen=True)
class ChainSpec:
    """One chain of months: the customer base, the flow's seed, when it starts and changes."""

    kind: Kind
    index: int
    data_seed: int  # the generator's seed: the chain's customer base
    flow_seed: int  # the flow's `seed`, the same every month (holdout split and bootstrap)
    start: int  # the first champion's month, counted from 2020-01
    months: int  # comparison months after it (with a change: at most)
    families: tuple[str, ...] = ("auc",)
    change_at: int | None = None  # the comparison month the change starts (None: no change)
    drift: float = 0.0
    with_point: bool = True  # run the point rule too (its own chain: a comparison a month)


def chain_specs(
    kind: Kind,
    count: int,
    seed: int,
    *,
    months: int = 0,
    cap: int = 0,
    drift: float = 0.0,
    point_chains: int | None = None,
) -> list[ChainSpec]:
    """`count` chains, each with its own customer base, flow seed and (for a change) month."""
    specs = []
    for index in range(count):
        rng = np.random.default_rng([seed, _KIND_CODES[kind], index])
        data_seed, flow_seed = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
        if kind == "noise":
            with_point = point_chains is None or index < point_chains
            specs.append(
                ChainSpec(
                    kind,
                    index,
                    data_seed,
                    flow_seed,
                    NOISE_START,
                    months,
                    ("auc", "value"),
                    with_point=with_point,
                )
            )
            continue
        # One month makes the champion, one more is compared before the change (so a policy
        # reading last month has a real last month, as it would in production), then the change
        # from comparison month 2 on. The calendar month of the change is random.
        change = int(rng.integers(*CHANGE_RANGE))
        family = "value" if kind == "b" else "auc"
        specs.append(
            ChainSpec(kind, index, data_seed, flow_seed, change - 2, cap + 1, (family,), 2, drift)
        )
    return specs


@dataclass
class Track:
    """One rule's life through a chain: its champion and what it compared it with lately."""

    family: str
    name: str
    policy: Policy
    champion: Model
    history: list[Comparison] = field(default_factory=list)
    promotions: list[int] = field(default_factory=list)
    done: bool = False


def run_chain(spec: ChainSpec) -> dict[str, Any]:
    """Every rule of the chain's families through its months: the months each one promoted.

    All rules start from the same first champion and advance month by month together; rules
    holding the same champion share the month's comparison (split, challenger, bootstrap).
    A change chain stops a rule at its first promotion from the change on.
    """
    started = time.perf_counter()
    keys = itertools.count()
    original = first_champion(
        load_month(spec.start, data_seed=spec.data_seed, drift=0.0),
        seed=spec.flow_seed,
        key=next(keys),
    )
    variants = _variants()
    tracks = [
        Track(family, name, variants[name](FAMILIES[family]), original)
        for family in spec.families
        for name in VARIANTS
        if spec.with_point or name != _POINT
    ]
    comparisons = bootstraps = 0
    change: dict[str, Any] = {}
    for m in range(1, spec.months + 1):
        if all(t.done for t in tracks):
            break
        changed = spec.change_at is not None and m >= spec.change_at
        month = load_month(
            spec.start + m, data_seed=spec.data_seed, drift=spec.drift if changed else 0.0
        )
        states: dict[int, Comparison] = {}  # this month's comparison with each champion

        def against(
            champion: Model, month: Month = month, states: dict[int, Comparison] = states
        ) -> Comparison:
            if champion.key not in states:
                states[champion.key] = Comparison(
                    month, champion, seed=spec.flow_seed, key=next(keys)
                )
            return states[champion.key]

        for track in (t for t in tracks if not t.done):
            comparison = against(track.champion)
            track.history = [*track.history[-1:], comparison]
            if track.policy(track.history):
                track.promotions.append(m)
                track.champion, track.history = comparison.challenger, []
                track.done = changed
        if m == spec.change_at:
            change = _change_month(against(original), FAMILIES[spec.families[0]])
        if spec.kind == "noise" and m == 1:
            _check_shared_decisions(against(original))
        comparisons += len(states)
        bootstraps += sum(c.bootstraps for c in states.values())
        if spec.kind == "noise" and m % 60 == 0:
            print(
                f"  noise chain {spec.index}: month {m}/{spec.months}, {len(states)} champions "
                f"compared this month, {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    return {
        "kind": spec.kind,
        "index": spec.index,
        "spec": asdict(spec),
        "seconds": round(time.perf_counter() - started, 1),
        "comparisons": comparisons,
        "bootstraps": bootstraps,
        "change": change,
        "promotions": {f"{t.family}/{t.name}": t.promotions for t in tracks},
    }


def _change_month(comparison: Comparison, metric: Metric) -> dict[str, Any]:
    """The change's size on the change month (a fresh retrain against the old champion), the
    width of the intervals the rule reads, and our rule's verdict on it."""
    challenger, champion = comparison.point_metrics()
    shared = comparison.shared(DecisionRule())
    assert shared.intervals is not None
    width = {name: i.upper - i.lower for name, i in shared.intervals.difference.items()}
    return {
        "challenger_auc": challenger["roc_auc"],
        "champion_auc": champion["roc_auc"],
        "challenger_value": challenger[VALUE_METRIC],
        "champion_value": champion[VALUE_METRIC],
        "auc_half_width": width["roc_auc"] / 2,
        "value_half_width": width[VALUE_METRIC] / 2,
        "verdict": comparison.decision(DecisionRule(metric=metric)).verdict,
    }


def _check_shared_decisions(comparison: Comparison) -> None:
    """Deciding on the shared bootstrap must equal the flow's own `evaluate` under each rule."""
    for rule in (DecisionRule(metric=VALUE_METRIC), DecisionRule(confidence=0.99)):
        shared, own = comparison.decision(rule), comparison.evaluate(rule).decision
        assert (shared.verdict, shared.interval) == (own.verdict, own.interval), rule.describe()


def calibration_chain(spec: ChainSpec, drifts: Sequence[float]) -> list[dict[str, float]]:
    """A fresh retrain against a champion trained two months before a change of each strength
    (as in the change chains): both models' ROC-AUC and retention value on the fair holdout."""
    champion = first_champion(
        load_month(spec.start, data_seed=spec.data_seed, drift=0.0), seed=spec.flow_seed, key=0
    )
    rows = []
    for drift in drifts:
        month = load_month(spec.start + 2, data_seed=spec.data_seed, drift=drift)
        ours, theirs = Comparison(month, champion, seed=spec.flow_seed, key=1).point_metrics()
        rows.append(
            {
                "drift": drift,
                "challenger_auc": ours["roc_auc"],
                "champion_auc": theirs["roc_auc"],
                "challenger_value": ours[VALUE_METRIC],
                "champion_value": theirs[VALUE_METRIC],
            }
        )
    return rows


# --- calibration and summaries ----------------------------------------------------------------


def _effects(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean ROC-AUCs and their gap, the relative retention-value gain (ratio of means) and the
    share of fresh retrains below the fitness floor, over these rows."""
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k, v in rows[0].items()
        if k != "drift" and isinstance(v, float)
    }
    floor = DecisionRule().floor
    return {
        **mean,
        "auc_gap": mean["challenger_auc"] - mean["champion_auc"],
        "value_gain": (mean["challenger_value"] - mean["champion_value"])
        / abs(mean["champion_value"]),
        "challenger_below_floor": float(np.mean([r["challenger_auc"] < floor for r in rows])),
        "champion_below_floor": float(np.mean([r["champion_auc"] < floor for r in rows])),
    }


def _crossing(
    drifts: Sequence[float], effects: Sequence[float], target: float
) -> tuple[float, bool]:
    """The drift where the mean effect first reaches `target` (linear between grid points), and
    whether it does at all (else the drift of the largest effect)."""
    for i in range(1, len(drifts)):
        if effects[i] >= target:
            low, high = effects[i - 1], effects[i]
            share = (target - low) / (high - low) if high > low else 1.0
            return round(drifts[i - 1] + share * (drifts[i] - drifts[i - 1]), 3), True
    return float(drifts[int(np.argmax(effects))]), False


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise_noise(chains: Sequence[dict[str, Any]], months: int) -> dict[str, dict[str, Any]]:
    """Promotions on noise per rule, per 240 months (scaled from `months`): mean, max over
    chains, share of chains with at most one."""
    out: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(k for c in chains for k in c["promotions"]):
        counts = [len(c["promotions"][key]) for c in chains if key in c["promotions"]]
        scaled = [n * MONTHS_PER_RECORD / months for n in counts]
        low, high = _wilson(sum(counts), months * len(counts))
        out[key] = {
            "chains": len(counts),
            "promotions": counts,
            "mean_per_240": float(np.mean(scaled)),
            "max_per_240": float(np.max(scaled)),
            "share_at_most_1": float(np.mean([n <= 1 for n in scaled])),
            "rate_per_month": sum(counts) / (months * len(counts)),
            # A chain's months share customers, so they are not independent: a rough band.
            "ci95_per_240": [low * MONTHS_PER_RECORD, high * MONTHS_PER_RECORD],
        }
    for family in FAMILIES:  # every month's retrain replaces the champion
        out[f"{family}/{ALWAYS_LATEST}"] = {
            "mean_per_240": float(MONTHS_PER_RECORD),
            "max_per_240": float(MONTHS_PER_RECORD),
            "share_at_most_1": 0.0,
            "by_definition": True,
        }
    return out


def summarise_power(chains: Sequence[dict[str, Any]], cap: int) -> dict[str, dict[str, Any]]:
    """Months from the change to each rule's first promotion (1 = the change month)."""
    out: dict[str, dict[str, Any]] = {}
    for key in chains[0]["promotions"]:
        delays = []
        for chain in chains:
            start = chain["spec"]["change_at"]
            after = [m for m in chain["promotions"][key] if m >= start]
            delays.append(after[0] - start + 1 if after else None)
        hits = sum(d is not None and d <= GOAL_WITHIN for d in delays)
        median = float(np.median([math.inf if d is None else d for d in delays]))
        out[key] = {
            "months_to_promotion": delays,
            "within": {
                k: float(np.mean([d is not None and d <= k for d in delays]))
                for k in range(1, cap + 1)
            },
            "median": None if math.isinf(median) else median,
            "not_within_cap": float(np.mean([d is None for d in delays])),
            f"ci95_within_{GOAL_WITHIN}": list(_wilson(hits, len(delays))),
        }
    family = "value" if chains[0]["kind"] == "b" else "auc"
    out[f"{family}/{ALWAYS_LATEST}"] = {
        "within": dict.fromkeys(range(1, cap + 1), 1.0),
        "median": 1.0,
        "not_within_cap": 0.0,
        "by_definition": True,
    }
    return out


def summarise_change(chains: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The change as measured in its chains, and our rule's verdicts on its first month."""
    rows = [c["change"] for c in chains]
    verdicts = Counter(r["verdict"] for r in rows)
    return {
        **_effects(rows),
        "verdicts": {v: n / len(rows) for v, n in verdicts.most_common()},
    }


# --- report -----------------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def print_table(
    noise: dict[str, dict[str, Any]], power: dict[str, dict[str, dict[str, Any]]], cap: int
) -> None:
    """One line per rule: noise and change (a) judged by roc_auc; noise and change (b) judged
    by retention value at capacity."""
    width = max(len(n) for n in RULE_NAMES) + 2
    print(
        f"\n{'':<{width}}{'noise, roc_auc rule':^22}{'change (a), months':^26}"
        f"{'noise, value rule':^22}{'change (b), months':^26}"
    )
    noise_head = f"{'/240 mo':>9}{'max':>6}{'<=1':>7}"
    power_head = f"{'<=1':>6}{'<=2':>6}{'<=3':>6}{'median':>8}"
    print(f"{'rule':<{width}}{(noise_head + power_head) * 2}")
    for name in RULE_NAMES:
        cells = []
        for family, change in (("auc", "a"), ("value", "b")):
            n = noise.get(f"{family}/{name}")
            p = power.get(change, {}).get(f"{family}/{name}")
            cells.append(
                f"{n['mean_per_240']:>9.2f}{n['max_per_240']:>6.0f}{n['share_at_most_1']:>7.0%}"
                if n
                else f"{'-':>9}{'-':>6}{'-':>7}"
            )
            if p is None:
                cells.append(f"{'-':>6}" * 3 + f"{'-':>8}")
            else:
                median = f">{cap}" if p["median"] is None else f"{p['median']:g}"
                within = "".join(f"{_share(p['within'].get(k)):>6}" for k in (1, 2, 3))
                cells.append(f"{within}{median:>8}")
        print(f"{name:<{width}}{''.join(cells)}", flush=True)


def goal_lines(
    noise: dict[str, dict[str, Any]], power: dict[str, dict[str, dict[str, Any]]]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Our rule's gaps to the goals as numbers (per change; empty: met), and the rules that
    meet both goals, per change."""
    gaps: dict[str, list[str]] = {}
    meeting: dict[str, list[str]] = {}
    for family, change in (("auc", "a"), ("value", "b")):
        if change not in power:
            continue
        ours = noise[f"{family}/ours"]["mean_per_240"]
        share = power[change][f"{family}/ours"]["within"][GOAL_WITHIN]
        gaps[change] = [
            *([f"noise {ours:.2f} > {GOAL_NOISE:g} per 240 months"] if ours > GOAL_NOISE else []),
            *(
                [f"promoted within {GOAL_WITHIN} months in {share:.0%} < {GOAL_SHARE:.0%}"]
                if share < GOAL_SHARE
                else []
            ),
        ]
        meeting[change] = [
            name
            for name in RULE_NAMES
            if noise[f"{family}/{name}"]["mean_per_240"] <= GOAL_NOISE
            and power[change][f"{family}/{name}"]["within"][GOAL_WITHIN] >= GOAL_SHARE
        ]
    return gaps, meeting


def plot(
    noise: dict[str, dict[str, Any]],
    power: dict[str, dict[str, dict[str, Any]]],
    cap: int,
    path: Path,
) -> None:
    """Trade-off (noise promotions vs promoted within 2 months) and months-to-promotion curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.4))
    colours = dict(zip(RULE_NAMES, plt.get_cmap("tab10").colors, strict=False))
    styles = dict(zip(RULE_NAMES, itertools.cycle(["-", "--", "-.", ":"]), strict=False))
    trade = axes[0]
    trade.fill_between([-0.5, GOAL_NOISE], GOAL_SHARE, 1.05, color="tab:green", alpha=0.12)
    trade.text(-0.4, 1.02, "goal", fontsize=8, color="tab:green", va="top")
    for family, change, marker in (("auc", "a", "o"), ("value", "b", "s")):
        for name in RULE_NAMES if change in power else ():
            x = noise[f"{family}/{name}"]["mean_per_240"]
            y = power[change][f"{family}/{name}"]["within"][GOAL_WITHIN]
            label = name if family == "auc" else None
            trade.scatter(x, y, marker=marker, color=colours[name], s=45, alpha=0.8, label=label)
    trade.set_xscale("symlog", linthresh=1.0)
    trade.set_xlim(-0.5, 400)
    trade.set_ylim(-0.02, 1.05)
    trade.set_xlabel("promotions on noise per 240 months (mean over chains)")
    trade.set_ylabel(f"share of changes promoted within {GOAL_WITHIN} months")
    trade.set_title("trade-off  (o: roc_auc rule, change a;  s: value rule, change b)", fontsize=9)
    trade.legend(fontsize=7, loc="center right")
    trade.grid(alpha=0.3)
    for ax, (family, change) in zip(axes[1:], (("auc", "a"), ("value", "b")), strict=True):
        months = np.arange(0, cap + 1)
        for name in RULE_NAMES:
            result = power.get(change, {}).get(f"{family}/{name}")
            if result is not None:
                shares = [0.0, *(result["within"][k] for k in range(1, cap + 1))]
                ax.step(
                    months, shares, where="post", color=colours[name], ls=styles[name], label=name
                )
        ax.axhline(GOAL_SHARE, color="grey", ls=":", lw=1)
        ax.axvline(GOAL_WITHIN, color="grey", ls=":", lw=1)
        ax.set_xlim(0, cap)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("months since the change (1 = the change month)")
        ax.set_ylabel("cumulative share of chains promoted")
        ax.set_title(f"change ({change}), judged by {FAMILIES[family]}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main -------------------------------------------------------------------------------------

_LIMITS: list[object] = []


def _single_threaded() -> None:
    """Two workers on two cores: one BLAS thread each, or they fight over the cores."""
    from threadpoolctl import threadpool_limits

    _LIMITS.append(threadpool_limits(limits=1))  # kept, so the limit holds


def calibrate(
    pool: ProcessPoolExecutor, chains: int, seed: int
) -> tuple[dict[str, dict[str, Any]], list[dict[str, float]]]:
    """The step strengths of changes (a) and (b), from the mean effect over `chains` chains
    (the same chains at every strength, so the curve is smooth)."""
    specs = chain_specs("calibration", chains, seed)
    per_chain = list(pool.map(calibration_chain, specs, [CALIBRATION_DRIFTS] * len(specs)))
    grid = [
        {"drift": d, **_effects([rows[i] for rows in per_chain])}
        for i, d in enumerate(CALIBRATION_DRIFTS)
    ]
    print(
        f"calibration over {chains} chains: a fresh retrain vs a champion trained 2 months "
        f"before a {SCENARIO} step of each strength, on the fair holdout (point estimates)\n"
        f"{'drift':>7}{'AUC gap':>10}{'value gain':>12}{'fresh AUC':>11}{'old AUC':>9}"
        f"{'fresh < floor':>15}{'old < floor':>13}"
    )
    for row in grid:
        print(
            f"{row['drift']:>7.2f}{row['auc_gap']:>+10.4f}{row['value_gain']:>+12.1%}"
            f"{row['challenger_auc']:>11.4f}{row['champion_auc']:>9.4f}"
            f"{row['challenger_below_floor']:>15.0%}{row['champion_below_floor']:>13.0%}"
        )
    targets = {
        "a": ("auc_gap", TARGET_AUC_GAP, f"ROC-AUC gap {TARGET_AUC_GAP:+g}"),
        "b": ("value_gain", TARGET_VALUE_GAIN, f"retention value gain {TARGET_VALUE_GAIN:+.0%}"),
    }
    chosen = {}
    for change, (key, target, what) in targets.items():
        drift, reached = _crossing(CALIBRATION_DRIFTS, [r[key] for r in grid], target)
        chosen[change] = {"drift": drift, "effect": key, "target": target, "reached": reached}
        note = "" if reached else " (not reached on the grid: the nearest, the largest effect)"
        print(f"change ({change}): {SCENARIO} drift {drift:g} for a {what}{note}", flush=True)
    return chosen, grid


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=10, help="noise chains (10)")
    parser.add_argument(
        "--months", type=int, default=MONTHS_PER_RECORD, help="months per noise chain (240)"
    )
    parser.add_argument(
        "--point-chains",
        type=int,
        default=3,
        help="noise chains that also run the point rule (3; it needs no bootstrap but has a "
        "champion of its own almost every month)",
    )
    parser.add_argument("--power-chains", type=int, default=100, help="chains per change (100)")
    parser.add_argument(
        "--cap", type=int, default=12, help="months after a change to wait for a promotion (12)"
    )
    parser.add_argument(
        "--calibration-chains", type=int, default=24, help="chains per strength (24)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    results = ROOT / "benchmarks" / "results"
    parser.add_argument("--json", type=Path, default=results / "months.json")
    parser.add_argument("--png", type=Path, default=results / "months.png")
    args = parser.parse_args()
    if args.quick:
        args.chains, args.months, args.point_chains = 2, 36, 1
        args.power_chains, args.cap, args.calibration_chains = 12, 6, 6
    return args


def main() -> None:
    args = _parse()
    started = time.perf_counter()
    print(
        f"Decision record over months: generated Telco months of {ROWS:,} rows, holdout "
        f"{HOLDOUT_FRACTION:.0%} drawn away from the champion's customers, seed {args.seed}\n"
        f"noise: {args.chains} chains x {args.months} months (point rule on {args.point_chains}); "
        f"changes: {args.power_chains} chains each, up to {args.cap} months\n"
        f"our rule: {DecisionRule().describe()}\n",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_single_threaded) as pool:
        chosen, grid = calibrate(pool, args.calibration_chains, args.seed)
        specs = [
            *chain_specs(
                "noise",
                args.chains,
                args.seed,
                months=args.months,
                point_chains=args.point_chains,
            ),
            *chain_specs(
                "a", args.power_chains, args.seed, cap=args.cap, drift=chosen["a"]["drift"]
            ),
            *chain_specs(
                "b", args.power_chains, args.seed, cap=args.cap, drift=chosen["b"]["drift"]
            ),
        ]
        print(f"\n{len(specs)} chains on {args.workers} workers", flush=True)
        futures = [pool.submit(run_chain, spec) for spec in specs]  # the long noise chains first
        total = Counter(s.kind for s in specs)
        done: Counter[str] = Counter()
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            kind = result["kind"]
            done[kind] += 1
            elapsed = f"{time.perf_counter() - started:.0f} s"
            if kind == "noise":
                counts = result["promotions"]
                print(
                    f"noise chain {result['index']}: {result['seconds']:.0f} s, "
                    f"{result['comparisons']} comparisons, {result['bootstraps']} bootstraps; "
                    f"promotions: ours {len(counts['auc/ours'])}, ours (value) "
                    f"{len(counts['value/ours'])} ({elapsed})",
                    flush=True,
                )
            elif done[kind] % max(1, total[kind] // 4) == 0 or done[kind] == total[kind]:
                print(f"change ({kind}): {done[kind]}/{total[kind]} chains ({elapsed})", flush=True)

    chains = {
        k: sorted((r for r in results if r["kind"] == k), key=lambda r: r["index"])
        for k in ("noise", "a", "b")
    }
    noise = summarise_noise(chains["noise"], args.months)
    power = {k: summarise_power(chains[k], args.cap) for k in ("a", "b") if chains[k]}
    changes = {k: summarise_change(chains[k]) for k in power}
    print("\nthe changes, measured on their first month (fresh retrain vs the old champion):")
    for k, c in changes.items():
        verdicts = ", ".join(f"{v} {share:.0%}" for v, share in c["verdicts"].items())
        print(
            f"  ({k}) drift {chosen[k]['drift']:g}: ROC-AUC {c['challenger_auc']:.4f} vs "
            f"{c['champion_auc']:.4f} (gap {c['auc_gap']:+.4f}, 95% half-width "
            f"{c['auc_half_width']:.4f}); value {c['challenger_value']:.2f} vs "
            f"{c['champion_value']:.2f} per scored customer (gain {c['value_gain']:+.1%}, "
            f"half-width {c['value_half_width']:.2f}); fresh retrain below the floor in "
            f"{c['challenger_below_floor']:.0%}, old champion in {c['champion_below_floor']:.0%}"
            f"\n      ours ({FAMILIES['value' if k == 'b' else 'auc']}) on that month: {verdicts}"
        )
    print_table(noise, power, args.cap)
    gaps, meeting = goal_lines(noise, power)
    wall = time.perf_counter() - started
    print(
        f"\nnoise: promotions per 240 months (scaled from {args.months}), mean and max over "
        f"chains, share of chains with at most 1. change: share of chains promoted within 1, 2, 3 "
        f"months (1 = the change month), median months ('>{args.cap}': not by the cap). "
        f"'{ALWAYS_LATEST}': by definition, not simulated."
    )
    for change, names in meeting.items():
        print(f"meet both goals for change ({change}): {', '.join(names) or 'none'}")
    for change, missed in gaps.items():
        family = "auc" if change == "a" else "value"
        ours = noise[f"{family}/ours"]["mean_per_240"]
        share = power[change][f"{family}/ours"]["within"][GOAL_WITHIN]
        print(
            f"goal (ours, {FAMILIES[family]}; change {change}): <= {GOAL_NOISE:g} promotion on "
            f"noise per 240 months ({ours:.2f}), >= {GOAL_SHARE:.0%} promoted within "
            f"{GOAL_WITHIN} months ({share:.0%}): " + ("; ".join(missed) or "met")
        )
    print(f"wall time {wall / 60:.1f} min")

    plot(noise, power, args.cap, args.png)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "seed": args.seed,
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "rules": {
                    "ours": DecisionRule().describe(),
                    "ours (value)": DecisionRule(metric=VALUE_METRIC).describe(),
                    "variants": list(RULE_NAMES),
                },
                "calibration": {"grid": grid, "chosen": chosen},
                "changes": changes,
                "noise": noise,
                "power": power,
                "goal_gaps": gaps,
                "meeting_both_goals": meeting,
                "chains": [{k: v for k, v in r.items() if k != "promotions"} for r in results],
                "wall_seconds": round(wall, 1),
            },
            indent=2,
        )
    )
    print(f"figures written to {args.json} and {args.png}")


if __name__ == "__main__":
    main()
