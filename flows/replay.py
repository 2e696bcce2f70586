"""A replay: a past month's decision re-derived from its record, in a scratch registry.

What the month's record and run hold (its data location and digest, seed, rule, model set,
code version) and the champion it was compared with, copied read-only from the real store,
go into a scratch state directory; the real retrain flow decides the month there, on the
CLI's own temporary Prefect server (no event, no alert, no triggered scoring), and the new
record is compared with the stored one. The real registry is only read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from flows.parameters import ReplayParameters, RetrainParameters
from tasks.decision.record import DecisionRecord
from tasks.errors import ChampionBelowFloor, UsageError
from tasks.months.replay import (
    Difference,
    copy_champion,
    find_stored_month,
    import_champion,
    replay_parameters,
    skip_versions,
)
from tasks.settings import Settings
from tasks.tracking.connection import connect_tracking
from tasks.tracking.runs import configure_tracking

#: Settings a scratch run must not inherit: the real store, alerts, credentials.
_OUTSIDE = ("CHURN_RETRAIN_", "MLFLOW_TRACKING_", "MLFLOW_REGISTRY_", "DAGSHUB_")


class ReplayResult(BaseModel):
    """The stored and the replayed record of the month, and how they differ."""

    model_config = ConfigDict(frozen=True)

    period: str
    stored: dict[str, object]
    replayed: DecisionRecord
    differences: list[Difference]
    code_note: str | None
    scratch: str

    @property
    def identical(self) -> bool:
        return not self.differences

    def text(self) -> str:
        record = self.replayed
        head = (
            f"replay {self.period}: identical to the stored decision (timings and ids apart)"
            if self.identical
            else f"replay {self.period}: {len(self.differences)} differences from the stored "
            "decision"
        )
        lines = [
            head,
            f"  verdict      {record.verdict} (champion v{record.champion_version_after})",
        ]
        lines += [f"  differs      {d.text()}" for d in self.differences]
        if self.code_note:
            lines.append(f"  code         {self.code_note}")
        lines.append(f"  scratch      {self.scratch} (the real registry was only read)")
        return "\n".join(lines)


@contextmanager
def _scratch(home: Path) -> Iterator[None]:
    """Settings of a scratch state directory for the block: its own local store, no alerts, no
    credentials, no `.env` (read from the working directory, so the block runs in `home`)."""
    saved, cwd = dict(os.environ), Path.cwd()
    for name in [n for n in os.environ if n.startswith(_OUTSIDE)]:
        del os.environ[name]
    os.environ["CHURN_RETRAIN_HOME"] = str(home)
    os.chdir(home)
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


def replay(params: ReplayParameters) -> ReplayResult:
    """Re-derive `params.period`'s decision in a scratch registry and compare the records."""
    from flows.retrain import retrain
    from tasks.months.replay import compare_records, describe_code

    settings = Settings()
    target = params.model.resolve(settings)
    if settings.is_local and not (settings.home / "mlflow.db").is_file():
        raise UsageError(f"no local store in {settings.home}: no month was decided there yet")
    connect_tracking(settings)  # the real store: read, never written (not even created)
    stored = find_stored_month(target.experiment_name, params.period)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    scratch = settings.home / "replays" / f"{target.model}-{params.period}-{stamp}"
    scratch.mkdir(parents=True)
    champion = stored.record.get("champion") or {}
    copy = copy_champion(target.model, champion["version"], scratch) if champion else None
    values = replay_parameters(stored)
    values["model"] = {**values.get("model", {}), **target.model_dump(exclude_none=True)}
    month = RetrainParameters.model_validate(values)
    with _scratch(scratch):
        configure_tracking(Settings(), target)
        if copy is not None:
            import_champion(copy, target.model, target.experiment_name)
        skip_versions(target.model, int(stored.record["challenger"]["version"]))
        outcome = retrain(month, return_state=True).result(raise_on_failure=False)
    if isinstance(outcome, ChampionBelowFloor) and isinstance(outcome.record, DecisionRecord):
        outcome = outcome.record  # decided and recorded; the month kept a champion below floor
    if isinstance(outcome, BaseException):
        raise outcome
    replayed = outcome.model_dump(mode="json")
    return ReplayResult(
        period=params.period,
        stored=stored.record,
        replayed=outcome,
        differences=compare_records(stored.record, replayed),
        code_note=describe_code(stored.record, replayed),
        scratch=str(scratch),
    )
