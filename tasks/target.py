"""Which model a run is for: a value passed down from the run's parameters, not read from the
environment in the middle of the code.

A `ModelTarget` names the registered model (its champion, history, lease and health), the MLflow
experiment its runs go to, the expectation suite its months pass, and optionally the customers
it serves: a row filter, so one monthly delivery can feed a model per segment (a region, a
product line, `Contract == 'Month-to-month'`). Empty fields take the environment's defaults
(`CHURN_RETRAIN_MODEL_NAME`, `CHURN_RETRAIN_EXPERIMENT_NAME`) when a run starts (`resolve`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.data.schema import COLUMNS
from tasks.errors import SnapshotRejected

if TYPE_CHECKING:
    from tasks.settings import Settings

#: The project's expectation suite (a target may name another).
DEFAULT_SUITE_PATH = Path(__file__).resolve().parents[1] / "expectations" / "telco_snapshot.json"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class ModelTarget(BaseModel):
    """The model a run retrains, scores or rolls back (the run form's "model" section)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(
        default=None,
        pattern=_NAME,
        description="Registered model name. Empty: CHURN_RETRAIN_MODEL_NAME, else telco-churn.",
    )
    experiment: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="MLflow experiment of its runs. Empty: CHURN_RETRAIN_EXPERIMENT_NAME, else "
        "churn-retrain.",
    )
    suite: str | None = Field(
        default=None,
        description="Expectation suite JSON its months pass. Empty: the project's "
        "expectations/telco_snapshot.json.",
    )
    rows: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Only these customers, after the whole month passed the suite: a pandas "
        "query over the snapshot's columns, e.g. Contract == 'Month-to-month' or "
        "InternetService != 'No'. Empty: every customer.",
    )

    @field_validator("rows")
    @classmethod
    def _a_query(cls, value: str | None) -> str | None:
        if value is not None:
            _checked_query(value)
        return value

    def resolve(self, settings: Settings) -> ModelTarget:
        """Every field filled: the environment's defaults where empty."""
        return self.model_copy(
            update={
                "name": self.name or settings.model_name,
                "experiment": self.experiment or settings.experiment_name,
                "suite": self.suite or str(DEFAULT_SUITE_PATH),
            }
        )

    @property
    def model(self) -> str:
        """The registered model name (after `resolve`)."""
        if self.name is None:
            raise ValueError("an unresolved model target has no name yet")
        return self.name

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment (after `resolve`)."""
        if self.experiment is None:
            raise ValueError("an unresolved model target has no experiment yet")
        return self.experiment

    @property
    def suite_path(self) -> Path:
        return Path(self.suite) if self.suite else DEFAULT_SUITE_PATH

    def select(self, frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
        """The target's customers of `frame` (all without `rows`), indexed 0..n-1."""
        if self.rows is None:
            return frame
        try:
            kept = frame.query(self.rows, engine="python")
        except Exception as exc:  # names a column or an operator, never a value
            raise SnapshotRejected(
                f"Snapshot {source}: the model's rows filter {self.rows!r} does not apply "
                f"({type(exc).__name__})"
            ) from None
        if kept.empty:
            raise SnapshotRejected(
                f"Snapshot {source}: no customer matches the model's rows filter {self.rows!r}"
            )
        return kept.reset_index(drop=True)


def _checked_query(query: str) -> None:
    """Refuse a filter that is not a query over the snapshot's columns (checked on an empty
    frame of the schema: names and syntax, not values)."""
    empty = pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})
    empty = empty.astype({"SeniorCitizen": "int64", "tenure": "int64"})
    empty = empty.astype({"MonthlyCharges": "float64", "TotalCharges": "float64"})
    try:
        empty.query(query, engine="python")
    except Exception as exc:
        raise ValueError(
            f"rows {query!r} is not a filter over the snapshot's columns: {exc}"
        ) from None
