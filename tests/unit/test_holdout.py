"""The fair holdout: never a customer the champion trained on, never one the challenger trains on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tasks.data.generate import generate_snapshot
from tasks.data.schema import ID_COLUMN, TARGET
from tasks.decision.holdout import (
    TrainingIds,
    hash_ids,
    holdout_cap,
    holdout_rows_needed,
    id_set_digest,
    split_fair_holdout,
)
from tasks.decision.intervals import delong_difference
from tasks.decision.rule import DecisionRule
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking, open_run
from tasks.tracking.training_ids import TRAINING_IDS_DIR, load_training_ids, log_training_ids

ROWS = 3000


def test_hashes_are_stable_salted_and_set_digests_ignore_order() -> None:
    ids = ["0001-AAAAA", "0002-BBBBB", "0003-CCCCC"]
    hashes = hash_ids(ids)
    assert hashes.dtype == np.uint64 and len(set(hashes.tolist())) == 3
    assert np.array_equal(hashes, hash_ids(ids))
    assert (
        id_set_digest(hashes)
        == id_set_digest(hashes[::-1])
        == id_set_digest(np.concatenate([hashes, hashes[:1]]))
    )
    assert id_set_digest(hashes) != id_set_digest(hashes[:2])
    # Salted: not the plain BLAKE2b of the ID.
    import hashlib

    plain = int.from_bytes(hashlib.blake2b(ids[0].encode(), digest_size=8).digest(), "little")
    assert int(hashes[0]) != plain


def test_no_champion_gives_a_plain_stratified_split() -> None:
    frame = generate_snapshot("2026-01", rows=ROWS)
    split = split_fair_holdout(frame, fraction=0.2, seed=42)
    assert len(split.holdout) == 600 and len(split.train) == 2400
    assert split.summary.excluded_rows == 0 and split.summary.unseen_rows is None
    assert "no champion" in split.summary.note
    rate = (frame[TARGET] == "Yes").mean()
    assert (split.holdout[TARGET] == "Yes").mean() == pytest.approx(rate, abs=0.005)
    assert not set(split.holdout[ID_COLUMN]) & set(split.train[ID_COLUMN])
    again = split_fair_holdout(frame, fraction=0.2, seed=42)
    assert again.holdout.equals(split.holdout) and again.train.equals(split.train)


def test_next_month_holdout_excludes_every_customer_the_champion_trained_on() -> None:
    january = generate_snapshot("2026-01", rows=ROWS)
    first = split_fair_holdout(january, fraction=0.2, seed=42)
    champion_ids = np.unique(hash_ids(first.train[ID_COLUMN]))  # what the champion trained on

    february = generate_snapshot("2026-02", rows=ROWS)
    shared = set(january[ID_COLUMN]) & set(february[ID_COLUMN])
    assert len(shared) / ROWS > 0.9  # the generator's customer continuity

    split = split_fair_holdout(
        february, fraction=0.2, seed=7, champion_ids=TrainingIds(champion_ids, digest="d")
    )
    trained_on = set(first.train[ID_COLUMN])
    assert not set(split.holdout[ID_COLUMN]) & trained_on  # zero overlap
    assert not set(split.holdout[ID_COLUMN]) & set(split.train[ID_COLUMN])
    assert len(split.holdout) + len(split.train) == ROWS
    expected_excluded = int(february[ID_COLUMN].isin(trained_on).sum())
    assert split.summary.excluded_rows == expected_excluded
    assert split.summary.unseen_rows == ROWS - expected_excluded
    # About 23% of February is unseen (January's holdout plus newcomers): enough for 20%.
    assert split.summary.holdout_rows == split.summary.requested_rows == 600
    assert f"{expected_excluded:,} rows left out" in split.summary.note
    assert split.summary.champion_ids_digest == "d"


def test_a_small_unseen_pool_becomes_the_whole_holdout_and_says_so() -> None:
    frame = generate_snapshot("2026-01", rows=ROWS)
    seen = np.unique(hash_ids(frame[ID_COLUMN].iloc[:2800]))
    split = split_fair_holdout(
        frame, fraction=0.2, seed=1, champion_ids=TrainingIds(seen, digest=None)
    )
    assert split.summary.holdout_rows == 200 < split.summary.requested_rows
    assert set(split.holdout[ID_COLUMN]) == set(frame[ID_COLUMN].iloc[2800:])
    assert "fewer than the 600 requested" in split.summary.note


def test_unknown_champion_ids_are_recorded() -> None:
    frame = generate_snapshot("2026-01", rows=ROWS)
    gone = TrainingIds(None, None, problem="the champion's training IDs are gone")
    split = split_fair_holdout(frame, fraction=0.2, seed=1, champion_ids=gone)
    assert split.summary.note.startswith("the champion's training IDs are gone")
    assert "may hold customers the champion trained on" in split.summary.note


def test_fraction_is_checked() -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_fair_holdout(generate_snapshot("2026-01", rows=300), fraction=1.0, seed=1)


def test_training_ids_round_trip_through_the_run(state_home: Path) -> None:
    tracking = configure_tracking.fn(Settings())
    run_id = open_run.fn(tracking, run_name="ids", params={}, tags={})
    train = generate_snapshot("2026-01", rows=500)
    digest = log_training_ids.fn(run_id, train)
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["training_ids.digest"] == digest
    assert run.data.tags["training_ids.count"] == "500"
    loaded = load_training_ids.fn(run_id)
    assert loaded.problem is None and loaded.digest == digest
    assert loaded.hashes is not None
    assert set(loaded.hashes.tolist()) == set(hash_ids(train[ID_COLUMN]).tolist())
    # No raw customer ID is stored anywhere in the artifact.
    folder = state_home / "mlartifacts"
    stored = b"".join(
        p.read_bytes() for p in folder.rglob("*") if TRAINING_IDS_DIR in str(p) and p.is_file()
    )
    assert not any(i.encode() in stored for i in train[ID_COLUMN].head(50))


def test_tampered_or_missing_training_ids_are_a_recorded_problem(state_home: Path) -> None:
    tracking = configure_tracking.fn(Settings())
    run_id = open_run.fn(tracking, run_name="ids", params={}, tags={})
    missing = load_training_ids.fn(run_id)
    assert missing.hashes is None and "unavailable" in (missing.problem or "")

    log_training_ids.fn(run_id, generate_snapshot("2026-01", rows=300))
    hashes_file = next(state_home.rglob(f"{TRAINING_IDS_DIR}/hashes.npy"))
    np.save(hashes_file, np.arange(10, dtype="<u8"))
    tampered = load_training_ids.fn(run_id)
    assert tampered.hashes is None and "do not match their digest" in (tampered.problem or "")


def test_an_unseen_pool_one_row_over_the_request_is_sampled_not_a_crash() -> None:
    """Issue 13: 846 unseen rows, 845 requested left one row to train on, and scikit-learn's
    stratified split refused that (train_size 1 < 2 classes). Any size must sample."""
    frame = generate_snapshot("2026-01", rows=4225)
    seen = np.unique(hash_ids(frame[ID_COLUMN].iloc[: 4225 - 846]))
    split = split_fair_holdout(
        frame, fraction=0.2, seed=42, champion_ids=TrainingIds(seen, digest="d")
    )
    assert (split.summary.requested_rows, split.summary.unseen_rows) == (845, 846)
    assert split.summary.holdout_rows == 845 and split.summary.train_rows == 4225 - 845
    unseen = frame.iloc[4225 - 846 :]
    assert set(split.holdout[ID_COLUMN]) <= set(unseen[ID_COLUMN])
    churned = int((unseen[TARGET] == "Yes").sum())
    assert abs(int((split.holdout[TARGET] == "Yes").sum()) - churned * 845 / 846) < 1


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_sizes_scikit_learn_could_split_choose_the_rows_they_always_chose(seed: int) -> None:
    """Decisions are reproducible across versions: where the earlier `train_test_split` worked,
    the same data and seed still give exactly its rows."""
    from sklearn.model_selection import train_test_split

    from tasks.decision.holdout import stratified_sample

    rng = np.random.default_rng(seed)
    for n, rate in ((50, 0.3), (300, 0.265), (301, 0.02), (40, 0.5)):
        labels = np.where(rng.random(n) < rate, "Yes", "No").astype(object)
        for size in (2, n // 5, n // 2, n - 2):
            _, before = train_test_split(
                np.arange(n), test_size=size, stratify=labels, random_state=seed
            )
            assert np.array_equal(stratified_sample(labels, size, seed), np.sort(before))
    one_positive = np.array(["No"] * 29 + ["Yes"], dtype=object)  # no stratification possible
    _, before = train_test_split(np.arange(30), test_size=6, random_state=seed)
    assert np.array_equal(stratified_sample(one_positive, 6, seed), np.sort(before))


# --- The holdout sized by the statistics -----------------------------------------------------


def test_the_rows_needed_follow_the_square_root_law_and_the_churn_share() -> None:
    base = holdout_rows_needed(0.004, confidence=0.95, positive_share=0.265)
    assert 200_000 < base < 210_000  # the README's figure for the default rule
    # Half the width needs four times the rows; a rarer class needs more of them.
    assert holdout_rows_needed(0.002, confidence=0.95, positive_share=0.265) == pytest.approx(
        4 * base, rel=1e-4
    )
    assert holdout_rows_needed(0.004, confidence=0.95, positive_share=0.1) > base
    assert holdout_rows_needed(0.004, confidence=0.99, positive_share=0.265) > base
    with pytest.raises(ValueError, match="positive share must be in"):
        holdout_rows_needed(0.004, confidence=0.95, positive_share=1.0)


def test_at_the_rows_needed_two_independent_coin_flip_models_differ_by_the_half_width() -> None:
    """What the formula promises, measured: DeLong's interval of two unrelated AUC-0.5 scorers."""
    half = 0.02
    rows = holdout_rows_needed(half, confidence=0.95, positive_share=0.265)
    widths = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        y = (np.arange(rows) < round(0.265 * rows)).astype(np.int64)
        interval = delong_difference(y, rng.random(rows), rng.random(rows))
        widths.append((interval.upper - interval.lower) / 2)
    assert np.median(widths) == pytest.approx(half, rel=0.05)


def test_the_rule_caps_a_big_month_s_holdout_and_the_split_says_so() -> None:
    rule = DecisionRule(holdout_half_width=0.02)  # ~8,200 rows at Telco's churn share
    frame = generate_snapshot("2026-01", rows=60_000)
    cap = holdout_cap(rule, frame[TARGET])
    share = float((frame[TARGET] == "Yes").mean())
    assert cap == holdout_rows_needed(0.02, confidence=0.95, positive_share=share)
    split = split_fair_holdout(frame, fraction=0.2, seed=3, max_rows=cap)
    assert len(split.holdout) == cap and len(split.train) == 60_000 - cap
    assert split.summary.cap_rows == cap and split.summary.requested_rows == cap
    assert f"capped at {cap:,} rows" in split.summary.note
    # Drawn fairly as before: stratified (within a row of the share), disjoint, seeded.
    held = int((split.holdout[TARGET] == "Yes").sum())
    assert abs(held - share * cap) <= 1
    assert not set(split.holdout[ID_COLUMN]) & set(split.train[ID_COLUMN])
    again = split_fair_holdout(frame, fraction=0.2, seed=3, max_rows=cap)
    assert again.holdout[ID_COLUMN].tolist() == split.holdout[ID_COLUMN].tolist()
    # Under the cap (the real Telco month: 1,409 rows held out) nothing changes.
    small = generate_snapshot("2026-01", rows=7043)
    capped = split_fair_holdout(
        small, fraction=0.2, seed=3, max_rows=holdout_cap(DecisionRule(), small[TARGET])
    )
    plain = split_fair_holdout(small, fraction=0.2, seed=3)
    assert capped.holdout[ID_COLUMN].tolist() == plain.holdout[ID_COLUMN].tolist()
    assert "capped" not in capped.summary.note


def test_no_cap_without_a_width_or_with_one_class_and_never_below_the_rule_s_minimum() -> None:
    labels = pd.Series(["Yes", "No"] * 50)
    assert holdout_cap(DecisionRule(holdout_half_width=None), labels) is None
    assert holdout_cap(DecisionRule(), pd.Series(["No"] * 100)) is None
    wide = DecisionRule(holdout_half_width=0.1, min_holdout_rows=5_000)
    assert holdout_cap(wide, labels) == 5_000
    with pytest.raises(ValueError, match="holdout cap must be positive"):
        split_fair_holdout(generate_snapshot("2026-01", rows=200), fraction=0.2, seed=1, max_rows=0)
