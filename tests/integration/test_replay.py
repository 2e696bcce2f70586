"""Issue 32: replaying past months in a scratch registry. Three decided months replay identical;
after one month's file is rewritten its replay names the changed digest and exits 12; the real
registry (versions, their tags and descriptions, aliases, history) is the same before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.data.generate import generate_snapshot
from tasks.errors import EXIT_REPLAY_DIFFERS
from tests.killing import mlflow_client
from tests.servers import clean_env, run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"]


def _registry(home: Path) -> dict[str, Any]:
    """Everything a replay must not change in the real registry, read from it."""
    client = mlflow_client(home)
    model = client.get_registered_model("telco-churn")
    versions = client.search_model_versions("name='telco-churn'")
    runs = client.search_runs([client.get_experiment_by_name("churn-retrain").experiment_id])
    return {
        "aliases": dict(model.aliases),
        "tags": dict(model.tags),
        "versions": sorted(
            (v.version, v.description, tuple(sorted(v.tags.items()))) for v in versions
        ),
        "runs": sorted(r.info.run_id for r in runs),
    }


@pytest.mark.timeout(900)
def test_replays_are_identical_and_a_rewritten_month_names_its_digest(tmp_path: Path) -> None:
    home, data = tmp_path / "state", tmp_path / "data"
    data.mkdir()
    for period in MONTHS:
        generate_snapshot(period, rows=1500).to_csv(data / f"{period}.csv", index=False)
    env = clean_env(CHURN_RETRAIN_HOME=str(home))
    fast = ["--models", "lr", "--folds", "2"]
    months = ["--from", MONTHS[0], "--to", MONTHS[-1], "--data", f"{data}/{{period}}.csv"]
    backfill = run_cli("backfill", *months, *fast, env=env, cwd=ROOT)
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    before = _registry(home)

    for period in ("2026-01", "2026-03", "2026-04"):  # the first (no champion) and two after
        replayed = run_cli("replay", "--period", period, env=env, cwd=ROOT)
        assert replayed.returncode == 0, replayed.stdout[-2000:] + replayed.stderr[-3000:]
        assert f"replay {period}: identical to the stored decision" in replayed.stdout
        assert "Traceback" not in replayed.stderr

    frame = generate_snapshot("2026-03", rows=1500)
    frame.loc[:99, "MonthlyCharges"] = frame.loc[:99, "MonthlyCharges"] + 1.0  # rewritten
    frame.to_csv(data / "2026-03.csv", index=False)
    changed = run_cli("replay", "--period", "2026-03", env=env, cwd=ROOT)
    assert changed.returncode == EXIT_REPLAY_DIFFERS, changed.stderr[-3000:]
    assert "data digest changed: the source was rewritten" in changed.stdout
    assert "ReplayDiffers: replay of 2026-03 differs from its record in" in changed.stderr
    assert "data_digest" in changed.stderr and "Traceback" not in changed.stderr

    assert _registry(home) == before  # the real registry was only read
    scratch = sorted((home / "replays").glob("telco-churn-2026-03-*"))
    assert len(scratch) == 2 and all((s / "mlflow.db").is_file() for s in scratch)
