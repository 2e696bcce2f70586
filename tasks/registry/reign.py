"""The champion's reign: its score at promotion, then on every later month's fresh rows.

`read_reign` reads it from MLflow: the run that promoted the version (its own holdout score)
and the retrain runs whose decision compared against it (tag `decision.champion_version_before`;
metrics `champion_holdout_<metric>`, `_lower`, `_upper`; tags `data.period`, `champion.health`;
params `rule.floor`, `rule.health_tolerance`). `build_reign` turns plain run data into points,
so ordering and gaps are tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict

from tasks.registry.aliases import is_missing

#: Bound on the runs read: 50 years of months with re-runs; the newest are kept.
MAX_RUNS = 600


@dataclass(frozen=True)
class RunData:
    """What the reign needs from one MLflow run (a plain value: units build one inline)."""

    run_id: str
    started_ms: int = 0
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


class ReignPoint(BaseModel):
    """The champion's score one month (or at promotion), with its interval when logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: str | None
    estimate: float | None  # None: the champion could not be scored that month
    lower: float | None = None
    upper: float | None = None
    state: str | None = None  # the health the run recorded; None at promotion
    run_id: str | None = None

    def score_text(self) -> str:
        return "-" if self.estimate is None else f"{self.estimate:.4f}"

    def interval_text(self) -> str:
        if self.lower is None or self.upper is None:
            return "-"
        return f"[{self.lower:.4f}, {self.upper:.4f}]"


class Reign(BaseModel):
    """One champion version's score over time, and the rule's lines to read it against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str
    version: str
    metric: str
    at_promotion: ReignPoint | None
    months: list[ReignPoint]  # by period; a month run again counts once, its latest run
    floor: float | None = None
    tolerance: float | None = None

    @property
    def has_scores(self) -> bool:
        """Whether there is anything to plot."""
        scored = [self.at_promotion, *self.months]
        return any(p is not None and p.estimate is not None for p in scored)

    def plot_name(self) -> str:
        """The reign plot's file name: one per model and version, replaced as months come."""
        return f"reign-{self.model_name.replace('/', '_')}-v{self.version}.png"

    def table(self) -> list[str]:
        """The score at promotion and each later month: period, score, interval, state."""
        if not self.has_scores:
            return [f"reign: no {self.metric} recorded at promotion or since"]
        start = self.at_promotion
        return [
            f"reign of v{self.version} ({self.metric} on rows it never saw):",
            f"  {'period':<8} {'score':>7}  {'interval':<18} state",
            *(
                f"  {p.period or '?':<8} {p.score_text():>7}  {p.interval_text():<18} "
                + ("at promotion" if p is start else p.state or "-")
                for p in [*([start] if start else []), *self.months]
            ),
        ]

    def with_month(self, point: ReignPoint) -> Reign:
        """The reign with this month's point, replacing an earlier run of the same period."""
        kept = [p for p in self.months if p.period != point.period]
        return self.model_copy(update={"months": _by_period([*kept, point])})


def promotion_point(run: RunData, metric: str) -> ReignPoint | None:
    """The score on its own holdout in the run that promoted it (None when not logged)."""
    key = f"holdout_{metric}"
    return _point(run, key, state=None) if key in run.metrics else None


def month_point(run: RunData, metric: str) -> ReignPoint:
    """The champion's score in a later retrain run (estimate None if it was not scored)."""
    return _point(run, f"champion_holdout_{metric}", state=run.tags.get("champion.health"))


def build_reign(
    model_name: str,
    version: str,
    *,
    metric: str,
    promoting: RunData | None,
    later: Iterable[RunData],
) -> Reign:
    """The reign from the promoting run and the later runs, in any order.

    Months are sorted by period; a period run more than once keeps its latest run. The rule's
    floor and tolerance are the latest run's (the rule in force), else the promoting run's.
    """
    runs = sorted(later, key=lambda r: (r.tags.get("data.period") or "", r.started_ms))
    latest = {r.tags.get("data.period"): r for r in runs}  # the last run of a period wins
    newest = max(runs, key=lambda r: r.started_ms, default=promoting)
    params = newest.params if newest is not None else {}
    return Reign(
        model_name=model_name,
        version=version,
        metric=metric,
        at_promotion=promotion_point(promoting, metric) if promoting else None,
        months=[month_point(r, metric) for r in latest.values()],
        floor=_number(params.get("rule.floor")),
        tolerance=_number(params.get("rule.health_tolerance")),
    )


def read_reign(name: str, version: str, *, metric: str = "roc_auc") -> Reign:
    """The reign of version `version` of model `name`, read from the tracking server."""
    client = MlflowClient()
    promoting_id = _version_run_id(client, name, version)
    versions = client.search_model_versions(f"name='{name}'", max_results=MAX_RUNS)
    # Only this model's runs (each registered a version): another model may have a "v1" too.
    model_runs = {mv.run_id for mv in versions if mv.run_id}
    later = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`decision.champion_version_before` = '{version}'",
        order_by=["attributes.start_time DESC"],
        max_results=MAX_RUNS,
    )
    return build_reign(
        name,
        version,
        metric=metric,
        promoting=_read_run(client, promoting_id) if promoting_id else None,
        later=[_run_data(r) for r in later if r.info.run_id in model_runs],
    )


def _version_run_id(client: MlflowClient, name: str, version: str) -> str | None:
    try:
        return client.get_model_version(name, version).run_id
    except MlflowException as exc:
        if is_missing(exc):  # deleted meanwhile: the later months still tell its story
            return None
        raise


def _read_run(client: MlflowClient, run_id: str) -> RunData | None:
    try:
        return _run_data(client.get_run(run_id))
    except MlflowException as exc:
        if is_missing(exc):  # a deleted run: the reign starts without its promotion score
            return None
        raise


def _run_data(run: Run) -> RunData:
    info, data = run.info, run.data
    return RunData(
        run_id=info.run_id,
        started_ms=info.start_time or 0,
        params=dict(data.params),
        metrics=dict(data.metrics),
        tags=dict(data.tags),
    )


def _point(run: RunData, key: str, *, state: str | None) -> ReignPoint:
    return ReignPoint(
        period=run.tags.get("data.period"),
        estimate=run.metrics.get(key),
        lower=run.metrics.get(f"{key}_lower"),
        upper=run.metrics.get(f"{key}_upper"),
        state=state,
        run_id=run.run_id,
    )


def _by_period(points: list[ReignPoint]) -> list[ReignPoint]:
    return sorted(points, key=lambda p: p.period or "")  # stable: equal periods keep their order


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:  # "None" or anything else a param could hold
        return None
