"""The parameters of every flow, one pydantic model each: the Prefect UI's run form and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_settings import CliSuppress

from tasks.data.request import DRIFT_SCENARIOS, PERIOD_PATTERN, SnapshotRequest, SourceOptions
from tasks.decision.approval import ApprovalPolicy
from tasks.decision.campaign import Campaign
from tasks.decision.rule import DecisionRule
from tasks.gate.thresholds import DriftThresholds
from tasks.months.backfill import month_range
from tasks.scoring.output import unsupported_output
from tasks.scoring.sizes import DEFAULT_BATCH_ROWS, DEFAULT_CHUNK_ROWS
from tasks.target import ModelTarget
from tasks.training.plan import (
    DEFAULT_FOLDS,
    DEFAULT_MAX_TRAIN_ROWS,
    DEFAULT_MODELS,
    MIN_TRAIN_ROWS,
)
from tasks.training.sample import SplitOptions
from tasks.training.train import TrainingOptions

SOURCE_DESCRIPTION = "How to read `data`: the file format, or the table or query of a database."
MODEL_DESCRIPTION = (
    "Which model: its registered name, MLflow experiment, expectation suite and (optionally) "
    "the customers it serves. Empty: the environment's default model, every customer."
)


def _model() -> Any:
    return Field(default_factory=ModelTarget, description=MODEL_DESCRIPTION)


class RetrainParameters(BaseModel):
    """Parameters of one monthly retrain (the Prefect UI renders this as the run form)."""

    model_config = ConfigDict(extra="forbid")

    period: str | None = Field(
        default=None,
        pattern=PERIOD_PATTERN,
        description="Month to retrain for, YYYY-MM. Empty: the current month (UTC).",
    )
    data: str | None = Field(
        default=None,
        description="Where the month's snapshot is: a path or http(s) URL (CSV, CSV.gz, "
        "Parquet), an fsspec URL (s3://, gs://, abfs://, file://), or a database URL "
        "(postgresql+psycopg://…, sqlite:///file.db) with `source.table` or `source.query`; "
        "`{period}` is filled in, `{secret:NAME}` takes a Prefect Secret block. `generated`: a "
        "generated Telco-shaped month. Empty: the Prefect Variable churn-retrain-data, else "
        "the run fails before training.",
    )
    source: SourceOptions = Field(default_factory=SourceOptions, description=SOURCE_DESCRIPTION)
    model: ModelTarget = _model()
    seed: int = Field(
        default=42, ge=0, le=2**31 - 1, description="Seed for the holdout split and training."
    )
    holdout_fraction: float = Field(
        default=0.2, ge=0.05, le=0.5, description="Share of rows held out to compare the models."
    )
    models: list[str] = Field(
        default=list(DEFAULT_MODELS),
        min_length=1,
        description="PyCaret model ids to cross-validate (e.g. lr, ada, lightgbm, gbc, rf), or "
        '["all"] for the whole zoo. Months over 100k rows keep only scalable models.',
    )
    folds: int = Field(default=DEFAULT_FOLDS, ge=2, le=20, description="Cross-validation folds.")
    budget_minutes: float | None = Field(
        default=None,
        gt=0,
        le=600,
        description="Time budget for model comparison (PyCaret stops trying models after it).",
    )
    max_train_rows: int | None = Field(
        default=DEFAULT_MAX_TRAIN_ROWS,
        ge=MIN_TRAIN_ROWS,
        le=50_000_000,
        description="Cap on the challenger's training rows: a larger training split is "
        "replaced by a stratified sample of this many rows (seeded with `seed`; the holdout is "
        "never sampled). The default is where more rows stopped improving holdout ROC-AUC by "
        "more than 0.001 (benchmarks/bench_learning_curve.py). Empty (null): train on every row.",
    )
    distributed_training: bool = Field(
        default=False,
        description="Cross-validate the candidate models in parallel on the flow's Dask "
        "cluster (PyCaret's FugueBackend). Needs the flow to run on prefect-dask's "
        "DaskTaskRunner (`churn-retrain run --dask ADDRESS`).",
    )
    rule: DecisionRule = Field(
        default_factory=DecisionRule, description="When the challenger replaces the champion."
    )
    approval: ApprovalPolicy = Field(
        default_factory=ApprovalPolicy,
        description="Whether a winning challenger waits for a person's approval before it "
        "becomes champion.",
    )
    generated_rows: int = Field(
        default=7043, ge=500, le=5_000_000, description="Rows to generate when no data is given."
    )
    drift: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Drift strength of generated data (0 = none)."
    )
    scenario: str = Field(
        default="none",
        description="Drift scenario of generated data: " + ", ".join(DRIFT_SCENARIOS) + ".",
    )
    drift_gate: DriftThresholds = Field(
        default_factory=DriftThresholds,
        description="Population stability (PSI) per feature against the champion's training "
        "data: warn at or above `warn`, reject the snapshot at or above `fail`.",
    )
    create_promotion_lock: bool = Field(
        default=True,
        description="Create the promotion lock (Prefect global concurrency limit "
        "`churn-retrain-promote-<model>`, one slot) if it is missing. Off: a missing lock "
        "fails the run before training (deployments that create it with `make promotion-lock`).",
    )

    def snapshot_request(self, period: str) -> SnapshotRequest:
        """Where this run's month comes from (the period resolved by the flow)."""
        return SnapshotRequest(
            source=self.data,
            options=self.source,
            period=period,
            seed=self.seed,
            generated_rows=self.generated_rows,
            drift=self.drift,
            scenario=self.scenario,
            categories=True,  # the flow takes its holdout and training rows with `take_rows`
        )

    def split_options(self) -> SplitOptions:
        """How the month is split into the holdout and the training rows."""
        return SplitOptions(self.holdout_fraction, self.seed, self.rule, self.max_train_rows)

    def training_options(self) -> TrainingOptions:
        """What the challenger cross-validates, and where."""
        return TrainingOptions(
            seed=self.seed,
            models=self.models,
            folds=self.folds,
            budget_minutes=self.budget_minutes,
            distributed=self.distributed_training,
        )

    def run_params(self) -> dict[str, Any]:
        """The MLflow run's parameters: every field, the rule flattened, the data apart."""
        return {
            **self.model_dump(exclude={"rule", "data", "source", "approval", "model"}),
            **{f"model.{k}": v for k, v in self.model.model_dump().items() if v is not None},
            **{f"source.{k}": v for k, v in self.source.model_dump(exclude={"query"}).items()},
            **{f"rule.{k}": v for k, v in self.rule.model_dump().items()},
            **{f"approval.{k}": v for k, v in self.approval.model_dump().items()},
        }


class ValidateParameters(BaseModel):
    """Parameters of a validate-only run (the Prefect UI renders this as the run form)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(
        min_length=1,
        description="Where the snapshot to check is, as a retrain's `data` (a path, URL, "
        "s3://… location or database URL; not `generated`); `{period}` is filled in.",
    )
    source: SourceOptions = Field(default_factory=SourceOptions, description=SOURCE_DESCRIPTION)
    period: str | None = Field(
        default=None,
        pattern=PERIOD_PATTERN,
        description="Month the snapshot is for, YYYY-MM. Empty: the current month (UTC).",
    )
    model: ModelTarget = _model()
    drift_gate: DriftThresholds = Field(
        default_factory=DriftThresholds,
        description="PSI thresholds against the current champion's training data.",
    )
    chunk_rows: int = Field(
        default=250_000,
        ge=1_000,
        le=5_000_000,
        description="Parquet input: rows read, typed and validated at a time (memory grows "
        "with it; below ~100,000, GX's set-up per chunk dominates).",
    )


class ScoreParameters(BaseModel):
    """Parameters of one batch scoring run (the Prefect UI renders this as the run form)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(
        description="Where the customers to score are, as a retrain's `data` (the target "
        "column is optional); `{period}` is filled in. A Parquet file or folder (local or "
        "fsspec) is streamed in batches of `batch_rows`; anything else is loaded whole. "
        'Empty (""): the location in the Prefect Variable churn-retrain-score-base.'
    )
    source: SourceOptions = Field(default_factory=SourceOptions, description=SOURCE_DESCRIPTION)
    model: ModelTarget = _model()
    period: str | None = Field(
        default=None, pattern=PERIOD_PATTERN, description="Month, YYYY-MM. Empty: this month."
    )
    output: str | None = Field(
        default=None,
        description="Where to write predictions: a .csv, .parquet or .pq file (no other "
        "extension); `{period}` and `{version}` (the champion's) are filled in. Empty: the "
        "Prefect Variable churn-retrain-score-output, else "
        "<state dir>/scores/<period>-v<version>.csv.",
    )
    campaign: Campaign | None = Field(
        default=None,
        description="The campaign whose list the `contact` column flags (its capacity) and "
        "whose value `expected_value` uses. Empty: the one of the rule the champion was "
        "promoted under; given (any of its fields), it replaces that one, fields not given "
        "taking their defaults.",
    )
    chunk_rows: int = Field(
        default=DEFAULT_CHUNK_ROWS,
        ge=1_000,
        le=5_000_000,
        description="Rows per call of the model (memory bound; the default measured fastest).",
    )
    batch_rows: int = Field(
        default=DEFAULT_BATCH_ROWS,
        ge=1_000,
        le=5_000_000,
        description="Parquet input: rows read, typed and validated at a time (memory bound). "
        "The suite costs about 1 s per batch on top of its per-row cost, so small batches "
        "validate slowly.",
    )

    @field_validator("output")
    @classmethod
    def _a_known_format(cls, value: str | None) -> str | None:
        """Refused before anything is loaded: the extension says how scores are written."""
        if value is not None and (problem := unsupported_output(value)) is not None:
            raise ValueError(problem)
        return value


class RollbackParameters(BaseModel):
    """Parameters of a rollback (the Prefect UI renders this as the run form)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelTarget = _model()
    to_version: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]*$",
        description="Registered version to make champion. Empty: the previous champion.",
    )
    expected_champion: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]*$",
        description="The champion this rollback is decided against: refused (conflict, exit 8) "
        "if another version is champion when it runs. Empty: the champion when the run starts.",
    )
    asked_at: datetime | None = Field(
        default=None,
        description="When the rollback was asked for (the command line sets the moment it "
        "started): refused (conflict) if the champion moved after it. Empty: not checked.",
    )
    reason: str = Field(
        default="manual rollback",
        max_length=300,
        description="Why, for the promotion history.",
    )
    create_promotion_lock: bool = Field(
        default=True,
        description="Create the promotion lock if it is missing (off: fail instead).",
    )


class PruneParameters(BaseModel):
    """Parameters of a registry prune (the Prefect UI renders this as the run form)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelTarget = _model()
    older_than_months: int = Field(
        default=6,
        ge=1,
        le=120,
        description="Delete versions never promoted and registered more than this many "
        "calendar months ago. The champion, the previous champion, any aliased version and "
        "any version in the promotion history are always kept.",
    )
    dry_run: bool = Field(default=False, description="List what would be deleted; delete nothing.")
    create_promotion_lock: bool = Field(
        default=True,
        description="Create the promotion lock if it is missing (off: fail instead).",
    )


class SimulateParameters(BaseModel):
    """A simulated sequence of months."""

    model_config = ConfigDict(extra="forbid")

    months: int = Field(default=12, ge=1, le=60, description="How many months to simulate.")
    start: str = Field(default="2026-01", pattern=PERIOD_PATTERN, description="First month.")
    scenario: str = Field(
        default="price_rise",
        description="Drift scenario: " + ", ".join(DRIFT_SCENARIOS) + ".",
    )
    drift_from: int = Field(
        default=4, ge=1, le=60, description="First month (1-based) with drift; it grows after."
    )
    max_drift: float = Field(default=1.0, ge=0.0, le=1.0, description="Drift in the last month.")
    rows: int = Field(default=7043, ge=500, le=200_000, description="Customers per month.")
    models: list[str] = Field(
        default=["lr"], min_length=1, description="PyCaret model ids (lr is fast)."
    )
    folds: int = Field(default=5, ge=2, le=20, description="Cross-validation folds.")
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed of data and training.")
    rule: DecisionRule = Field(default_factory=DecisionRule, description="The promotion rule.")
    drift_gate: DriftThresholds = Field(
        # The drift is the point of a simulation: the gate reports it instead of rejecting.
        default=DriftThresholds(fail=10.0),  # frozen, so one shared instance is safe
        description="Drift thresholds; by default drift is reported (warn), never rejected.",
    )

    @field_validator("drift_gate", mode="before")
    @classmethod
    def _over_the_default(cls, value: object) -> object:
        """Thresholds given in part (`--drift-gate.warn 0.2`) keep the others of this default."""
        default = cls.model_fields["drift_gate"].default
        if isinstance(value, dict):
            return {**default.model_dump(), **value}
        return value

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, value: str) -> str:
        if value not in DRIFT_SCENARIOS:
            raise ValueError(f"unknown scenario {value!r}; allowed: {', '.join(DRIFT_SCENARIOS)}")
        return value


class BackfillParameters(RetrainParameters):
    """Every month from `from` to `to` through the retrain, in order, one at a time: the
    `retrain/backfill` form and `churn-retrain backfill`. The retrain's options apply to each."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Each month in turn: the retrain's own `period` is neither on the form nor a flag.
    period: CliSuppress[SkipJsonSchema[None]] = Field(default=None, exclude=True)
    start: str = Field(alias="from", pattern=PERIOD_PATTERN, description="First month, YYYY-MM.")
    end: str = Field(
        alias="to", pattern=PERIOD_PATTERN, description="Last month, YYYY-MM (included)."
    )
    continue_on_rejection: bool = Field(
        default=False,
        description="Go on past a month the data gate rejects (said in the closing table); by "
        "default the backfill stops there. Months decided before are skipped either way.",
    )

    @model_validator(mode="after")
    def _a_range(self) -> BackfillParameters:
        month_range(self.start, self.end)  # in order, and not over 10 years
        return self

    def months(self) -> list[str]:
        return month_range(self.start, self.end)

    def month(self, period: str) -> RetrainParameters:
        """The retrain's parameters for one month of the range."""
        own = {"period", "start", "end", "continue_on_rejection"}
        return RetrainParameters.model_validate({**self.model_dump(exclude=own), "period": period})


class ReplayParameters(BaseModel):
    """Which past month to re-derive in a scratch registry (`churn-retrain replay`)."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=PERIOD_PATTERN, description="The decided month, YYYY-MM.")
    model: ModelTarget = _model()
