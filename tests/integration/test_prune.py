"""Registry housekeeping: the pure decision on inline versions (and any versions Hypothesis
draws), then `prune` on a real MLflow registry through the flow, the delete step and the CLI."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from cli.main import main
from flows.parameters import PruneParameters
from tasks.data.generate import generate_snapshot
from tasks.decision.verdict import PROMOTING
from tasks.errors import PruneRefused
from tasks.registry.aliases import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from tasks.registry.history import read_history
from tasks.registry.lock import promotion_lock
from tasks.registry.prune import (
    VersionFacts,
    decide_prune,
    delete_unpromoted_versions,
    months_before,
    plan_prune,
)
from tasks.registry.versions import mark_version
from tasks.settings import Settings
from tasks.tracking.runs import configure_tracking
from tests.registry_helpers import MODEL, make_version

NOW = datetime(2026, 7, 15, 12, tzinfo=UTC)
OLD = datetime(2025, 11, 1, tzinfo=UTC)  # eight months before NOW
UNPROMOTED = {"promoted": "false", "verdict": "tie", "period": "2025-11"}


def _v(version: str, *, at: datetime = OLD, aliases: frozenset[str] = frozenset(), **tags: str):
    return VersionFacts(version=version, registered_at=at, tags=tags, aliases=aliases)


# --- the decision, on inline data ------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 7, 15, 12, tzinfo=UTC), 6, datetime(2026, 1, 15, 12, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 3, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 1, 10, tzinfo=UTC), 1, datetime(2025, 12, 10, tzinfo=UTC)),
        (datetime(2026, 1, 10, tzinfo=UTC), 120, datetime(2016, 1, 10, tzinfo=UTC)),
    ],
)
def test_months_before_is_calendar_months(
    moment: datetime, months: int, expected: datetime
) -> None:
    assert months_before(moment, months) == expected


def test_every_version_is_kept_for_the_first_reason_that_applies() -> None:
    versions = [
        _v("1", **UNPROMOTED),  # champion by alias, even if its tags were never flipped
        _v("2", **UNPROMOTED),
        _v("3", aliases=frozenset({"shadow"}), **UNPROMOTED),  # its own alias
        _v("4", **UNPROMOTED),  # in the history only
        _v("5", promoted="true", verdict="promote", period="2025-11"),
        _v("6"),  # no tags at all: registered by hand
        _v("7", promoted="false"),  # no verdict
        _v("8", promoted="false", verdict="promote"),  # a promotion that may not have finished
        _v("9", at=NOW - timedelta(days=30), **UNPROMOTED),
        _v("10", **UNPROMOTED),
        _v("11", at=months_before(NOW, 6), **UNPROMOTED),  # exactly N months: not older
        _v("12", **UNPROMOTED),
    ]
    decisions = decide_prune(
        versions,
        aliases={CHAMPION: "1", PREVIOUS_CHAMPION: "2", CHALLENGER: "12"},
        history={"1", "2", "4"},
        now=NOW,
        older_than_months=6,
    )
    why = {d.version: d.why for d in decisions}
    assert why == {
        "1": "champion",
        "2": "previous-champion",
        "3": "alias",
        "4": "history",
        "5": "promoted",
        "6": "unclear",
        "7": "unclear",
        "8": "unclear",
        "9": "young",
        "10": "delete",
        "11": "young",
        "12": "alias",
    }
    [deleted] = [d for d in decisions if d.delete]
    assert (
        deleted.reason == "never promoted (verdict tie), registered 2025-11-01, before 2026-01-15"
    )
    assert deleted.period == "2025-11" and deleted.verdict == "tie"
    assert "@challenger" in next(d.reason for d in decisions if d.version == "12")
    assert [d.version for d in decisions] == [str(n) for n in range(1, 13)]  # by number


_versions = st.lists(
    st.builds(
        VersionFacts,
        version=st.integers(1, 40).map(str),
        registered_at=st.datetimes(
            min_value=datetime(2015, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
        ),
        tags=st.fixed_dictionaries(
            {},
            optional={
                "promoted": st.sampled_from(["true", "false", "", "yes"]),
                "verdict": st.sampled_from([*PROMOTING, "tie", "keep-champion", "conflict"]),
            },
        ),
        aliases=st.frozensets(st.sampled_from(["shadow", CHALLENGER, CHAMPION]), max_size=2),
    ),
    max_size=25,
    unique_by=lambda v: v.version,
)
_numbers = st.integers(1, 40).map(str)


@settings(max_examples=300, deadline=None)
@given(
    versions=_versions,
    aliases=st.dictionaries(st.sampled_from([CHAMPION, PREVIOUS_CHAMPION, "shadow"]), _numbers),
    history=st.frozensets(_numbers, max_size=10),
    months=st.integers(1, 120),
)
def test_nothing_protected_is_ever_chosen(
    versions: list[VersionFacts], aliases: dict[str, str], history: frozenset[str], months: int
) -> None:
    decisions = decide_prune(
        versions, aliases=aliases, history=history, now=NOW, older_than_months=months
    )
    assert sorted(d.version for d in decisions) == sorted(v.version for v in versions)
    facts = {v.version: v for v in versions}
    cutoff = months_before(NOW, months)
    for d in decisions:
        assert d.reason
        if not d.delete:
            continue
        v = facts[d.version]
        assert d.version not in aliases.values() and not v.aliases and d.version not in history
        assert v.tags["promoted"] == "false" and v.tags["verdict"] not in PROMOTING
        assert v.registered_at < cutoff


# --- a real registry --------------------------------------------------------------------------


def _age(versions: list[str], *, days: int = 250) -> None:
    """Make versions look registered `days` ago, in the local SQLite store itself."""
    when = int((time.time() - days * 86400) * 1000)
    with sqlite3.connect(Settings().home / "mlflow.db") as db:
        db.executemany(
            "UPDATE model_versions SET creation_time = ? WHERE name = ? AND version = ?",
            [(when, MODEL, int(v)) for v in versions],
        )


def _registered() -> set[str]:
    return {str(mv.version) for mv in MlflowClient().search_model_versions(f"name='{MODEL}'")}


def _aliases() -> dict[str, str]:
    return {a: str(v) for a, v in MlflowClient().get_registered_model(MODEL).aliases.items()}


@pytest.fixture
def month(state_home: Path) -> object:
    configure_tracking.fn(Settings())
    return generate_snapshot("2026-01", rows=800)


@pytest.fixture
def registry(month: object) -> None:
    """v5 champion, v3 previous, v1 in the history only; v2, v4 old and never promoted; v6 the
    challenger; v7 without a promoted tag; v8 never promoted but young."""
    client = MlflowClient()
    for promote in (True, False, True, False, True, False, False, False):
        make_version(month, promote=promote)
    mark_version(client, MODEL, "6", verdict="tie")  # what a retrain that keeps the champion does
    client.delete_model_version_tag(MODEL, "7", "promoted")
    _age(["1", "2", "3", "4", "5", "6", "7"])


@pytest.mark.usefixtures("prefect_server", "registry")
def test_dry_run_lists_then_prune_deletes_only_old_unpromoted_versions() -> None:
    from flows.prune import prune

    history, aliases = read_history(MlflowClient(), MODEL), _aliases()
    assert aliases == {CHAMPION: "5", PREVIOUS_CHAMPION: "3", CHALLENGER: "6"}

    dry = prune(PruneParameters(older_than_months=6, dry_run=True))
    assert dry.dry_run and [d.version for d in dry.deleted] == ["2", "4"]
    assert all(d.reason.startswith("never promoted (verdict helper)") for d in dry.deleted)
    assert dry.kept == {
        "history": 1,
        "previous-champion": 1,
        "champion": 1,
        "alias": 1,
        "unclear": 1,
        "young": 1,
    }
    assert _registered() == {str(n) for n in range(1, 9)}  # nothing deleted

    done = prune(PruneParameters(older_than_months=6))
    assert not done.dry_run and [d.version for d in done.deleted] == ["2", "4"]
    assert done.kept == dry.kept and done.listed == 8
    assert _registered() == {"1", "3", "5", "6", "7", "8"}
    assert read_history(MlflowClient(), MODEL) == history and _aliases() == aliases

    assert prune(PruneParameters(older_than_months=6)).deleted == []  # nothing left to delete
    assert prune(PruneParameters(older_than_months=12, dry_run=True)).deleted == []


@pytest.mark.usefixtures("prefect_server")
def test_a_version_that_got_an_alias_after_the_plan_is_kept(month: object) -> None:
    for promote in (True, False, False):
        make_version(month, promote=promote)
    _age(["2", "3"])
    plan = plan_prune.fn(MODEL, older_than_months=6)
    assert [d.version for d in plan.deleted] == ["2", "3"]
    MlflowClient().set_registered_model_alias(MODEL, "shadow", "2")  # meanwhile

    done = delete_unpromoted_versions.fn(plan)
    assert [d.version for d in done.deleted] == ["3"]
    assert done.kept == {"champion": 1, "alias": 1}
    assert _registered() == {"1", "2"}


@pytest.mark.usefixtures("prefect_server")
def test_a_busy_promotion_lock_deletes_nothing(month: object) -> None:
    make_version(month)  # creates the lock too
    make_version(month, promote=False)
    _age(["2"])
    plan = plan_prune.fn(MODEL, older_than_months=6)
    with (
        promotion_lock(MODEL),
        pytest.raises(PruneRefused, match="promotion lock of 'telco-churn' stayed busy"),
    ):
        delete_unpromoted_versions.fn(plan, lock_timeout_seconds=1)
    assert _registered() == {"1", "2"}


@pytest.mark.usefixtures("prefect_server")
def test_prune_command_prints_the_table_and_json(
    month: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    make_version(month)
    make_version(month, promote=False, period="2025-10")
    _age(["1", "2"])

    assert main(["prune", "--older-than-months", "6", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "telco-churn: would delete 1 of 2 version(s)" in out and "(dry run)" in out
    assert "kept 1 (champion 1)" in out
    [row] = [line for line in out.splitlines() if line.strip().startswith("v2 ")]
    assert "2025-10" in row and "never promoted (verdict helper)" in row
    assert _registered() == {"1", "2"}

    assert main(["prune", "--older-than-months", "6", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [d["version"] for d in result["deleted"]] == ["2"] and result["dry_run"] is False
    assert _registered() == {"1"}

    assert main(["prune", "--older-than-months", "0"]) == 2
    assert "--older-than-months: Input should be greater than or equal to 1" in (
        capsys.readouterr().err
    )
