"""The fair holdout: split off the rows the models are compared on, none of which the champion
trained on (its customers known by their hashed IDs), and the training sample of the rest."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from tasks.data.schema import ID_COLUMN, POSITIVE_LABEL, TARGET
from tasks.decision.rule import DecisionRule


def split_holdout(
    frame: pd.DataFrame, *, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified, seeded split into (train, holdout). The holdout is never trained on."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    train, holdout = train_test_split(
        frame, test_size=fraction, stratify=frame[TARGET], random_state=seed
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


#: The run artifact folder holding a model's training-customer hashes.
#: Changing the salt or the hash makes earlier models' sets unreadable: bump the scheme name.
ID_HASH_SCHEME = "blake2b-64/churn-retrain-customer-v1"
_SALT = b"churn-retrain/v1"  # blake2b salts are at most 16 bytes

IdHashes = npt.NDArray[np.uint64]


def hash_ids(ids: Iterable[object]) -> IdHashes:
    """One salted 64-bit hash per customer ID, in input order (each digest read little-endian)."""
    blake2b, salt = hashlib.blake2b, _SALT
    # One bytes object read by numpy: ~1/3 faster than an int per ID (100M IDs: minutes).
    digests = b"".join(blake2b(str(i).encode(), digest_size=8, salt=salt).digest() for i in ids)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def id_set_digest(hashes: IdHashes) -> str:
    """A digest of the set (order and duplicates ignored): same customers, same digest."""
    unique = np.unique(hashes).astype("<u8")
    return f"sha256:{hashlib.sha256(unique.tobytes()).hexdigest()[:32]}"


class HoldoutSummary(BaseModel):
    """How the comparison holdout was chosen; part of the decision record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int  # snapshot rows
    requested_rows: int  # holdout_fraction of the snapshot, at most the cap
    cap_rows: int | None = None  # the rows the rule's interval width needs (holdout_rows_needed)
    holdout_rows: int
    train_rows: int
    excluded_rows: int  # rows kept out of the holdout because the champion trained on them
    unseen_rows: int | None  # rows the holdout could be drawn from
    champion_ids_digest: str | None
    note: str


@dataclass(frozen=True)
class HoldoutSplit:
    """The challenger's training rows and the comparison holdout, disjoint.

    The training rows are `train_positions` of `frame`, taken only when `train` is asked for:
    a big month's training split is sampled down (sample_training_rows) without a copy of it.
    """

    frame: pd.DataFrame = field(repr=False)
    train_positions: npt.NDArray[np.intp] = field(repr=False)
    holdout: pd.DataFrame
    summary: HoldoutSummary

    @cached_property
    def train(self) -> pd.DataFrame:
        return take_rows(self.frame, self.train_positions)


def take_rows(frame: pd.DataFrame, positions: npt.NDArray[np.intp]) -> pd.DataFrame:
    """The rows at `positions`, indexed 0..n-1 (without reset_index's second copy), their
    categorical columns (a compact month's) as plain objects, as a CSV read gives them."""
    rows = frame.take(positions)  # type: ignore[arg-type]  # pandas-stubs: list only
    rows.index = pd.RangeIndex(len(rows))
    compact = [c for c, t in rows.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
    if compact:
        rows = rows.astype(dict.fromkeys(compact, object))
    return rows


def holdout_rows_needed(half_width: float, *, confidence: float, positive_share: float) -> int:
    """Holdout rows at which the interval of a difference of two ROC-AUCs is `half_width` wide
    on each side, at its widest: both AUCs 0.5 (the Mann-Whitney variance under the null,
    1 / (12 p (1 - p) n) for a share p of positives) and the two models' errors independent
    (variances add; a paired difference, as the rule uses, is narrower).

    The interval narrows with the square root of the rows, so past this size more rows only
    resolve differences finer than the rule acts on, while the bootstrap's cost keeps growing.
    """
    if not 0 < positive_share < 1:
        raise ValueError(f"positive share must be in (0, 1), got {positive_share}")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    return math.ceil(z**2 / (6 * positive_share * (1 - positive_share) * half_width**2))


def holdout_cap(rule: DecisionRule, labels: pd.Series | npt.NDArray[Any]) -> int | None:
    """The rule's holdout cap for a month with these labels, or with these flags of the positive
    label (a boolean array: a streamed month's); None: no cap, or one class only."""
    positive = labels if labels.dtype == bool else labels == POSITIVE_LABEL
    share = float(positive.mean()) if len(labels) else 0.0
    if rule.holdout_half_width is None or not 0 < share < 1:
        return None  # one class: the comparison is refused anyway (insufficient-holdout)
    needed = holdout_rows_needed(
        rule.holdout_half_width, confidence=rule.confidence, positive_share=share
    )
    return max(needed, rule.min_holdout_rows)


@dataclass(frozen=True)
class TrainingIds:
    """A model's training customers as read back from its run (or why they could not be)."""

    hashes: IdHashes | None
    digest: str | None
    problem: str | None = None


def split_fair_holdout(
    frame: pd.DataFrame,
    *,
    fraction: float,
    seed: int,
    champion_ids: TrainingIds | None = None,
    max_rows: int | None = None,
) -> HoldoutSplit:
    """Hold out `fraction` of the rows, at most `max_rows`, stratified and seeded, from
    customers the champion never trained on (all customers when there is no champion, or its
    set is unknown: `champion_ids` None, or without hashes and with the problem that says why).

    If fewer unseen rows exist than requested, all of them form the holdout and the summary
    says so. Both parts keep the snapshot's row order, so the same data gives the same split.
    """
    choice = choose_fair_holdout(
        frame[TARGET].to_numpy(),
        lambda known: np.isin(hash_ids(frame[ID_COLUMN]), known),
        fraction=fraction,
        seed=seed,
        champion_ids=champion_ids,
        max_rows=max_rows,
    )
    return HoldoutSplit(
        frame=frame,
        train_positions=choice.train_positions,
        holdout=take_rows(frame, choice.holdout_positions),
        summary=choice.summary,
    )


@dataclass(frozen=True)
class HoldoutChoice:
    """Which rows (positions in the month's order) form the holdout, which are left to train on."""

    holdout_positions: npt.NDArray[np.intp]
    train_positions: npt.NDArray[np.intp]
    summary: HoldoutSummary


def choose_fair_holdout(
    labels: npt.NDArray[Any],
    seen_by: Callable[[IdHashes], npt.NDArray[np.bool_]],
    *,
    fraction: float,
    seed: int,
    champion_ids: TrainingIds | None = None,
    max_rows: int | None = None,
) -> HoldoutChoice:
    """`split_fair_holdout`'s choice from the month's labels alone (and `seen_by`: which rows'
    customers are among the champion's hashed IDs, asked only when those are known): a month
    streamed from its source is split without its rows in memory, into the rows an in-memory
    split would give."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"the holdout cap must be positive, got {max_rows}")
    rows = labels.size
    share = max(1, round(fraction * rows))
    requested = share if max_rows is None else min(share, max_rows)
    known = TrainingIds(None, None) if champion_ids is None else champion_ids
    if known.hashes is None:
        eligible = np.ones(rows, dtype=bool)
        seen = None
        note = (
            f"{known.problem}: stratified {fraction:.0%} split; the holdout may hold "
            "customers the champion trained on"
            if known.problem
            else f"no champion: stratified {fraction:.0%} split"
        )
    else:
        eligible = ~seen_by(known.hashes)
        seen = int((~eligible).sum())
        note = (
            f"{seen:,} rows left out of the holdout because the champion trained on those "
            f"customers; holdout drawn from the {int(eligible.sum()):,} rows it never saw"
        )
    if requested < share:
        note += f"; capped at {requested:,} rows, the width the rule's interval needs"
    pool = np.flatnonzero(eligible)
    if pool.size <= requested:
        chosen = pool
        if known.hashes is not None:
            note += f" (all of them: fewer than the {requested:,} requested)"
    else:
        chosen = pool[stratified_sample(labels[pool], requested, seed)]
    in_holdout = np.zeros(rows, dtype=bool)
    in_holdout[chosen] = True
    train_positions = np.flatnonzero(~in_holdout)
    return HoldoutChoice(
        holdout_positions=chosen,
        train_positions=train_positions,
        summary=HoldoutSummary(
            rows=rows,
            requested_rows=requested,
            cap_rows=max_rows,
            holdout_rows=chosen.size,
            train_rows=train_positions.size,
            excluded_rows=seen or 0,
            unseen_rows=None if known.hashes is None else int(pool.size),
            champion_ids_digest=known.digest,
            note=note,
        ),
    )


def stratified_sample(
    labels: npt.NDArray[np.object_], size: int, seed: int
) -> npt.NDArray[np.intp]:
    """`size` of the positions 0..n-1 of `labels` (any 0 <= size <= n), stratified and seeded.

    Each class gets its share of the rows left out, rounded by largest remainder (ties broken
    by the seeded generator), and the sample is the rest of each class after a seeded shuffle:
    every class is within one row of its share, whatever the sizes. These are the draws
    scikit-learn's stratified `train_test_split` made here before, from the same generator in
    the same order, so the same data and seed choose the same rows as before (that function
    refused some sizes: fewer rows left out, or sampled, than there are classes). With one
    class, or a class of one row, the rows are a plain seeded shuffle's first `size`, as before.
    """
    n = labels.size
    if not 0 <= size <= n:
        raise ValueError(f"cannot sample {size} of {n} rows")
    rng = np.random.RandomState(seed)  # the generator the earlier splits drew from
    inverse = _class_codes(labels)
    counts = np.bincount(inverse.ravel(), minlength=1)
    if counts.size < 2 or counts.min() < 2:
        return np.sort(rng.permutation(n)[:size])
    left_out = _largest_remainder(counts, n - size, rng)
    # Each class's positions in order: what a stable argsort of `inverse` splits into, without
    # sorting a large month's labels (100M rows: seconds and 800 MB less).
    flat = inverse.ravel()
    members = [np.flatnonzero(flat == k) for k in range(counts.size)]
    # Only the kept part of each shuffle is gathered (the same draws: a 100M month, ~1 GB less).
    chosen = [
        rows[rng.permutation(rows.size)[k:]] for rows, k in zip(members, left_out, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _class_codes(labels: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Each label's class, numbered in sorted order of the labels present (`np.unique`'s
    inverse); for flags (a streamed month's), read off the array without sorting it."""
    if labels.dtype == bool and labels.size and labels.any() and not labels.all():
        return labels.view(np.uint8)  # False < True: classes 0 and 1, as np.unique numbers them
    if labels.dtype == bool:
        return np.zeros(labels.size, dtype=np.uint8)  # one class (or none)
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse


def _largest_remainder(
    counts: npt.NDArray[np.int64], total: int, rng: np.random.RandomState
) -> npt.NDArray[np.int64]:
    """`total` split over the classes in proportion to `counts`: floors, then one more to the
    largest remainders (tied remainders drawn at random). Each share is within one of exact."""
    exact = counts / counts.sum() * total
    shares = np.floor(exact)
    missing = int(total - shares.sum())
    remainder = exact - shares
    for value in np.sort(np.unique(remainder))[::-1]:
        if missing <= 0:
            break
        (tied,) = np.where(remainder == value)
        picked = rng.choice(tied, size=min(tied.size, missing), replace=False)
        shares[picked] += 1
        missing -= picked.size
    return shares.astype(np.int64)
