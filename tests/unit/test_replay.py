"""The replay's pure parts: the parameters rebuilt from a run's, and the record comparison."""

from __future__ import annotations

import json

from flows.parameters import RetrainParameters
from tasks.months.replay import StoredMonth, compare_records, describe_code, replay_parameters

RECORD = {
    "period": "2026-03",
    "data_source": "/data/2026-03.csv",
    "data_digest": "sha256:aa",
    "mlflow_run_id": "r1",
    "decided_at": "2026-04-01T02:00:00+00:00",
    "stage_seconds": {"train": 3.1},
    "challenger": {"version": "4", "run_id": "r1", "holdout": {"roc_auc": 0.81}},
    "decision": {"verdict": "tie", "interval": {"lower": -0.01, "upper": 0.02}},
    "promotion": {"event": {"seq": 3, "at": "x", "by": "ops"}, "promoted": False},
    "code_version": "git:abc",
}


def test_timings_and_ids_apart_a_replay_of_the_same_record_is_identical() -> None:
    again = json.loads(json.dumps(RECORD))
    again.update(mlflow_run_id="r9", decided_at="2026-12-07T18:00:00+00:00")
    again["stage_seconds"] = {"train": 9.9}
    again["challenger"]["run_id"] = "r9"
    again["promotion"]["event"].update(seq=1, at="y", by="root")
    assert compare_records(RECORD, again) == []


def test_each_difference_is_named_with_its_meaning() -> None:
    again = json.loads(json.dumps(RECORD))
    again["data_digest"] = "sha256:bb"
    again["decision"]["verdict"] = "promote"
    again["code_version"] = "git:def"
    found = {d.path: d for d in compare_records(RECORD, again)}
    assert set(found) == {"data_digest", "decision.verdict"}
    assert found["data_digest"].text() == (
        "data_digest: stored 'sha256:aa', replayed 'sha256:bb' (data digest changed: the source "
        "was rewritten since the month was decided)"
    )
    assert (
        describe_code(RECORD, again)
        == "code version differs: decided by git:abc, replayed with git:def"
    )
    assert describe_code({}, again) == "the record predates code versions; replayed with git:def"


def test_the_parameters_come_back_from_the_runs_own() -> None:
    params = {
        "period": "2026-03",
        "seed": "7",
        "models": '["lr", "ada"]',
        "folds": "4",
        "budget_minutes": "null",
        "scenario": "none",
        "rule.floor": "0.7",
        "rule.campaign": '{"capacity": 0.2}',
        "model.rows": "Contract == 'Month-to-month'",
        "source.format": "csv",
        "approval.required": "true",
        "data.source": "/data/2026-03.csv",
        "data.rows": "1500",
    }
    values = replay_parameters(StoredMonth(record=RECORD, params=params, run_id="r1"))
    month = RetrainParameters.model_validate(values)
    assert (month.period, month.seed, month.models, month.folds) == ("2026-03", 7, ["lr", "ada"], 4)
    assert month.data == "/data/2026-03.csv" and month.budget_minutes is None
    assert month.rule.floor == 0.7 and month.rule.campaign.capacity == 0.2
    assert month.model.rows == "Contract == 'Month-to-month'"
    assert month.approval.required is False  # a replay asks nobody
    generated = replay_parameters(
        StoredMonth(
            record={**RECORD, "data_source": "generated:2026-03?seed=7"}, params={}, run_id="r"
        )
    )
    assert generated["data"] == "generated"
