"""Drift of a snapshot against the data the current champion was trained on.

Each registered model carries `reference_profile.json` in its MLflow run: per numeric feature the
reference's quantile bin edges and the share of rows in each bin, per categorical feature the
share of each category. No rows, no IDs. A new snapshot is binned the same way and compared by
the population stability index, PSI = sum((actual - expected) * ln(actual / expected)):
below 0.1 is usually read as stable, 0.1-0.25 as a shift worth a look, above 0.25 as a shift
the model was not trained for. The thresholds are data (`DriftThresholds`), in the flow form.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tasks.data.schema import CATEGORICAL_DOMAINS, FEATURES
from tasks.errors import SnapshotRejected
from tasks.gate.failures import FailedCheck
from tasks.gate.thresholds import DriftThresholds, Status
from tasks.settings import Settings
from tasks.steps import retried_step, step

PROFILE_ARTIFACT = "reference_profile.json"
#: Numeric features binned by the reference's quantiles; every other feature is categorical
#: (`SeniorCitizen` is 0/1, a category in all but type).
NUMERIC_FEATURES: tuple[str, ...] = ("tenure", "MonthlyCharges", "TotalCharges")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURES if c not in NUMERIC_FEATURES)
MISSING = "(missing)"
OTHER = "(other)"
# Share given to an empty bin so that ln(actual / expected) stays finite.
_EPSILON = 1e-4

logger = logging.getLogger(__name__)


class NumericProfile(BaseModel):
    """Inner bin edges (bins are (-inf, e1], (e1, e2], ..., (ek, inf)) and their shares."""

    edges: list[float]
    shares: list[float]
    missing: float = 0.0


class ReferenceProfile(BaseModel):
    """The distribution of the data a model was trained on; JSON, no rows."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    rows: int
    bins: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, dict[str, float]]


class ColumnDrift(BaseModel):
    """One feature's shift."""

    column: str
    kind: Literal["numeric", "categorical"]
    psi: float
    status: Status


class DriftReport(BaseModel):
    """The snapshot's drift against the champion's reference profile, per column."""

    model_config = ConfigDict(frozen=True)

    source: str
    status: Literal["ok", "warn", "fail", "skipped"]
    reason: str = ""
    champion_version: str | None = None
    reference_rows: int | None = None
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    columns: list[ColumnDrift] = Field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status != "fail"

    @property
    def failures(self) -> tuple[FailedCheck, ...]:
        """Columns over the fail threshold, in the shape the alerts and reports use."""
        return tuple(
            FailedCheck(c.column, "drift:psi", self._describe(c), None)
            for c in self.columns
            if c.status == "fail"
        )

    def by_column(self) -> dict[str, list[FailedCheck]]:
        return {f.column or "(table)": [f] for f in self.failures}

    def summary(self) -> str:
        if self.status == "skipped":
            return f"skipped: {self.reason}"
        shifted = [c for c in self.columns if c.status != "ok"]
        top = max(self.columns, key=lambda c: c.psi) if self.columns else None
        against = f"champion v{self.champion_version}'s training data"
        if not shifted:
            biggest = f" (largest PSI {top.psi:.3f}, {top.column})" if top else ""
            return f"no drift against {against}{biggest}"
        failing = sum(1 for c in shifted if c.status == "fail")
        warning = len(shifted) - failing
        if failing:
            head = f"{failing} of {len(self.columns)} columns past the fail threshold"
            head += f", {warning} more past warn" if warning else ""
        else:
            head = f"{warning} of {len(self.columns)} columns past the warn threshold"
        lines = [f"{head} (PSI against {against})"]
        lines += [f"  {c.column}: {self._describe(c)}" for c in shifted]
        return "\n".join(lines)

    def _describe(self, column: ColumnDrift) -> str:
        limit = self.thresholds.fail if column.status == "fail" else self.thresholds.warn
        return f"PSI {column.psi:.3f} >= {column.status} threshold {limit:g}"

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def profile_frame(frame: pd.DataFrame, *, bins: int = 10) -> ReferenceProfile:
    """The reference profile of a (training) frame: quantile bins and category shares."""
    if len(frame) == 0:
        raise ValueError("cannot profile an empty frame")
    numeric: dict[str, NumericProfile] = {}
    for column in NUMERIC_FEATURES:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        present = values[~np.isnan(values)]
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.unique(np.quantile(present, quantiles)) if len(present) else np.array([])
        numeric[column] = NumericProfile(
            edges=[float(e) for e in edges],
            shares=_bin_shares(present, edges, len(values)),
            missing=float(np.isnan(values).mean()),
        )
    categorical = {column: _category_shares(frame[column]) for column in CATEGORICAL_FEATURES}
    return ReferenceProfile(rows=len(frame), bins=bins, numeric=numeric, categorical=categorical)


def population_stability(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two distributions over the same buckets (shares summing to about 1)."""
    if len(expected) != len(actual):
        raise ValueError(f"bucket counts differ: {len(expected)} vs {len(actual)}")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, _EPSILON), max(a, _EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def compare_with_profile(
    frame: pd.DataFrame,
    profile: ReferenceProfile,
    thresholds: DriftThresholds,
    *,
    source: str,
    champion_version: str | None = None,
) -> DriftReport:
    """PSI per feature of `frame` against `profile`; the report's status is the worst column's."""
    counts = DriftCounts(profile)
    counts.add(frame)
    return counts.report(thresholds, source=source, champion_version=champion_version)


class DriftCounts:
    """What the drift check needs of a month, counted a chunk at a time against the reference's
    bins: per numeric feature the rows in each bin and the missing ones, per categorical one
    the rows of each bucket. A few hundred integers, whatever the month's size."""

    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile
        self.rows = 0
        self._bins = {
            c: np.zeros(len(p.edges) + 1, dtype=np.int64) for c, p in profile.numeric.items()
        }
        self._missing = dict.fromkeys(profile.numeric, 0)
        self._buckets: dict[str, dict[str, int]] = {c: {} for c in profile.categorical}

    def add(self, frame: pd.DataFrame) -> None:
        """Count one chunk's feature values."""
        self.rows += len(frame)
        for column, reference in self.profile.numeric.items():
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            missing = np.isnan(values)
            self._missing[column] += int(missing.sum())
            index = np.searchsorted(np.asarray(reference.edges), values[~missing], side="left")
            self._bins[column] += np.bincount(index, minlength=len(reference.edges) + 1)
        for column in self.profile.categorical:
            _count_categories(frame[column], self._buckets[column])

    @classmethod
    def merged(cls, parts: Sequence[DriftCounts]) -> DriftCounts:
        """The counts of all the parts (partitions of one month, against one profile)."""
        whole = cls(parts[0].profile)
        for part in parts:
            whole.rows += part.rows
            for column, bins in part._bins.items():
                whole._bins[column] += bins
                whole._missing[column] += part._missing[column]
            for column, buckets in part._buckets.items():
                for bucket, count in buckets.items():
                    whole._buckets[column][bucket] = whole._buckets[column].get(bucket, 0) + count
        return whole

    def report(
        self, thresholds: DriftThresholds, *, source: str, champion_version: str | None = None
    ) -> DriftReport:
        """PSI per feature of the rows counted; the report's status is the worst column's."""
        total, columns = self.rows, []
        for column, reference in self.profile.numeric.items():
            bins = self._bins[column]
            actual = [float(c) / total for c in bins] if total else [0.0] * bins.size
            actual.append(self._missing[column] / total if total else 0.0)
            psi = population_stability([*reference.shares, reference.missing], actual)
            columns.append(
                ColumnDrift(column=column, kind="numeric", psi=psi, status=thresholds.status(psi))
            )
        for column, reference_shares in self.profile.categorical.items():
            observed = _shares(self._buckets[column], total)
            buckets = list(dict.fromkeys([*reference_shares, *observed]))
            psi = population_stability(
                [reference_shares.get(b, 0.0) for b in buckets],
                [observed.get(b, 0.0) for b in buckets],
            )
            columns.append(
                ColumnDrift(
                    column=column, kind="categorical", psi=psi, status=thresholds.status(psi)
                )
            )
        statuses = {c.status for c in columns}
        status: Status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"
        return DriftReport(
            source=source,
            status=status,
            champion_version=champion_version,
            reference_rows=self.profile.rows,
            thresholds=thresholds,
            columns=columns,
        )


def _bin_shares(present: np.ndarray, edges: np.ndarray, total: int) -> list[float]:
    """Share of all `total` rows (missing ones included in the denominator) in each bin."""
    if total == 0:
        return [0.0] * (len(edges) + 1)
    index = np.searchsorted(edges, present, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [float(c) / total for c in counts]


def _category_shares(series: pd.Series) -> dict[str, float]:
    """Share of each category; values outside the schema's domain pool under "(other)"."""
    return _shares(_count_categories(series, {}), len(series))


def _count_categories(series: pd.Series, buckets: dict[str, int]) -> dict[str, int]:
    """Add the rows of each bucket of `series` to `buckets`: its categories, "(missing)", and
    values outside the schema's domain pooled under "(other)"."""
    domain = {str(v) for v in CATEGORICAL_DOMAINS.get(str(series.name), ())}
    missing = int(series.isna().sum())
    if missing:
        buckets[MISSING] = buckets.get(MISSING, 0) + missing
    # Count first, name buckets after: a few distinct values instead of a million strings.
    for value, count in series.value_counts(dropna=True).items():
        if not count:  # a categorical's unused category
            continue
        bucket = OTHER if domain and str(value) not in domain else str(value)
        buckets[bucket] = buckets.get(bucket, 0) + int(count)
    return buckets


def _shares(buckets: dict[str, int], total: int) -> dict[str, float]:
    """Each bucket's share of `total` rows, buckets sorted by name."""
    if total == 0:
        return {}
    return {bucket: count / total for bucket, count in sorted(buckets.items())}


@retried_step("log-reference-profile")  # the same file at the same path: safe to repeat
def log_reference_profile(run_id: str, train: pd.DataFrame) -> ReferenceProfile:
    """Store the training data's profile in the challenger's MLflow run, for next month's drift."""
    from mlflow.tracking import MlflowClient

    profile = profile_frame(train)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PROFILE_ARTIFACT
        path.write_text(profile.model_dump_json(indent=1))
        MlflowClient().log_artifact(run_id, str(path))
    return profile


class Reference(BaseModel):
    """The champion's profile, or why there is none to compare with."""

    profile: ReferenceProfile | None = None
    champion_version: str | None = None
    reason: str = ""


@retried_step("find-reference-profile")
def find_reference_profile(settings: Settings, model: str) -> Reference:
    """The current champion of `model`'s reference profile from its MLflow run, if any.

    Connects through `connect_tracking`, like every command: URIs and credentials alike.
    """
    if settings.is_local and not (settings.home / "mlflow.db").is_file():
        return Reference(reason="no champion yet (no MLflow store)")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from tasks.registry.aliases import champion_version
    from tasks.tracking.connection import connect_tracking

    connect_tracking(settings)
    client = MlflowClient()
    version = champion_version(client, model)
    if version is None:
        return Reference(reason="no champion yet")
    run_id = client.get_model_version(model, version).run_id
    if not run_id:
        return Reference(champion_version=version, reason=f"champion v{version} has no run")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp)
            profile = ReferenceProfile.model_validate(json.loads(Path(path).read_text()))
    except (MlflowException, OSError, ValueError) as exc:
        # Models registered before profiles were logged: drift cannot be judged, say so.
        logger.warning("champion v%s has no readable %s: %s", version, PROFILE_ARTIFACT, exc)
        return Reference(
            champion_version=version, reason=f"champion v{version} has no reference profile"
        )
    return Reference(profile=profile, champion_version=version)


@step("check-drift")
def check_drift(
    frame: pd.DataFrame | DriftCounts,
    reference: Reference,
    thresholds: DriftThresholds,
    *,
    source: str,
) -> DriftReport:
    """Compare the snapshot (or its counts against the reference's bins, a streamed month's)
    with the champion's training data; raise `SnapshotRejected` on fail."""
    if not thresholds.enabled:
        report = DriftReport(source=source, status="skipped", reason="drift check disabled")
    elif reference.profile is None:
        report = DriftReport(
            source=source,
            status="skipped",
            reason=reference.reason,
            champion_version=reference.champion_version,
        )
    elif isinstance(frame, DriftCounts):
        report = frame.report(
            thresholds, source=source, champion_version=reference.champion_version
        )
    else:
        report = compare_with_profile(
            frame,
            reference.profile,
            thresholds,
            source=source,
            champion_version=reference.champion_version,
        )
    if not report.success:
        raise SnapshotRejected(
            f"Snapshot {source} rejected: drift: {report.summary()}", report=report
        )
    logger.info("Snapshot %s drift: %s", source, report.summary())
    return report
