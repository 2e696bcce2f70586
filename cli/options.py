"""The command line of `churn-retrain`, generated from the flows' parameter models.

pydantic-settings turns each model into flags: a field is a flag in kebab case, a nested model's
fields are dotted (`--rule.min-improvement`, `--drift-gate.fail`), a bool has a `--no-` form, a
list is comma-separated, `null` is None. Each command's model is the flow's parameter model
(flows/parameters.py, also the Prefect UI's run form) plus the options only a shell needs
(`--json`, `--dask`, simulate's `--home`), so defaults, bounds and descriptions exist once.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    CliApp,
    CliSubCommand,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from flows.parameters import (
    MODEL_DESCRIPTION,
    BackfillParameters,
    PruneParameters,
    ReplayParameters,
    RetrainParameters,
    RollbackParameters,
    ScoreParameters,
    SimulateParameters,
    ValidateParameters,
)
from tasks.data.request import PERIOD_PATTERN, SourceOptions
from tasks.errors import UsageError
from tasks.target import ModelTarget


def _retrain_field(name: str) -> Any:
    """A field of the retrain's parameters (description, default, bounds) for another model."""
    return copy.deepcopy(RetrainParameters.model_fields[name])


def _as_json(what: str) -> Any:
    return Field(default=False, alias="json", description=f"Print {what} as JSON.")


def _on_dask(what: str) -> Any:
    return Field(
        default=None,
        description=f"Run the flow's submitted tasks ({what}) on a Dask cluster through "
        "prefect-dask's DaskTaskRunner: a scheduler address (tcp://host:8786), or `local` for "
        "a LocalCluster. Its workers read the data from the same path or URL.",
    )


class RunCommand(RetrainParameters):
    """Retrain for one month and promote the winner."""

    as_json: bool = _as_json("the decision record")
    dask: str | None = _on_dask("training")

    @model_validator(mode="after")
    def _cluster_for_distributed_training(self) -> RunCommand:
        if self.distributed_training and not self.dask:
            raise ValueError("--distributed-training needs --dask ADDRESS (or --dask local)")
        return self


class BackfillCommand(BackfillParameters):
    """Retrain every month from --from to --to in order (months decided before are skipped)."""

    as_json: bool = _as_json("the closing table")


class ReplayCommand(ReplayParameters):
    """Re-derive a past month's decision in a scratch registry and compare it with the stored
    one (exit 12 when it differs; the real registry is only read)."""

    as_json: bool = _as_json("the stored and replayed records and their differences")


class StatusCommand(BaseModel):
    """The champion, its scores and the promotion history."""

    model: ModelTarget = Field(default_factory=ModelTarget, description=MODEL_DESCRIPTION)
    as_json: bool = _as_json("the status")


class RollbackCommand(RollbackParameters):
    """Move the champion back (to the previous champion, or --to-version)."""

    as_json: bool = _as_json("the history event")

    @model_validator(mode="after")
    def _asked_now(self) -> RollbackCommand:
        # The operator decided when they typed the command, not when its flow got going (~6 s
        # later): a move of the champion in between refuses the rollback.
        if self.asked_at is None:
            self.asked_at = datetime.now(UTC)
        return self


class PruneCommand(PruneParameters):
    """Delete registered versions never promoted and older than N months (--dry-run lists them)."""

    as_json: bool = _as_json("what was deleted and kept")


class SimulateCommand(SimulateParameters):
    """Run the real flow over generated months with drift; plot the champion."""

    home: Path | None = Field(
        default=None,
        description="State directory of the simulation. Empty: a new one under "
        "<home>/simulations (never the real registry).",
    )


class ScoreCommand(ScoreParameters):
    """Score customers with the champion, in chunks."""

    dask: str | None = _on_dask("a Parquet base's row groups, one task each")


class GenerateCommand(BaseModel):
    """Write a generated Telco-shaped snapshot as CSV (the data `run` generates)."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=PERIOD_PATTERN, description="Month, YYYY-MM.")
    # The generator's options of the retrain, so their defaults and bounds are defined once.
    seed: int = _retrain_field("seed")
    generated_rows: int = _retrain_field("generated_rows")
    drift: float = _retrain_field("drift")
    scenario: str = _retrain_field("scenario")
    out: Path = Field(description="CSV file to write.")


class ValidateCommand(ValidateParameters):
    """Check a snapshot with the data gate, without training (exit 3: rejected)."""

    as_json: bool = _as_json("the gate report")
    dask: str | None = _on_dask("a Parquet month's row groups, one task each")


class AutomationCommand(BaseModel):
    """Create the Prefect automations on the server in PREFECT_API_URL: alert when a retrain
    fails, crashes or times out, and mark a run Crashed when its heartbeats stop."""

    model_config = ConfigDict(extra="forbid")

    block: str = Field(
        min_length=1, description="Notification block as TYPE/NAME, e.g. slack-webhook/alerts."
    )
    file: Path | None = Field(
        default=None, description="One automation YAML. Empty: both files in automations/."
    )
    print_only: bool = Field(
        default=False, alias="print", description="Print the JSON instead of creating it."
    )


class SourceCommand(BaseModel):
    """Show, set or clear the data location scheduled runs read (the Prefect Variable
    churn-retrain-data on the Prefect server in PREFECT_API_URL)."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(
        default=None,
        min_length=1,
        description="The location to set, as a retrain's `data` (`{period}` and "
        "`{secret:NAME}` kept as written). Empty: show the current one.",
    )
    source: SourceOptions = _retrain_field("source")
    clear: bool = Field(default=False, description="Remove the configured location.")


Command = (
    RunCommand
    | BackfillCommand
    | ReplayCommand
    | StatusCommand
    | RollbackCommand
    | PruneCommand
    | SimulateCommand
    | ScoreCommand
    | GenerateCommand
    | ValidateCommand
    | AutomationCommand
    | SourceCommand
)


class ChurnRetrainCli(BaseSettings):
    """Retrain the churn model monthly, promote it only if it is better, and roll it back."""

    model_config = SettingsConfigDict(
        cli_prog_name="churn-retrain",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_enforce_required=True,
        cli_avoid_json=True,  # nested models as dotted flags only, no `--rule JSON`
        cli_parse_none_str="null",  # `--rule.leakage-ceiling null`; not "none", a scenario
        cli_exit_on_error=False,  # errors come back as exceptions: exit 2, one line
    )

    run: CliSubCommand[RunCommand] = Field(description=RunCommand.__doc__)
    backfill: CliSubCommand[BackfillCommand] = Field(description=BackfillCommand.__doc__)
    replay: CliSubCommand[ReplayCommand] = Field(description=ReplayCommand.__doc__)
    status: CliSubCommand[StatusCommand] = Field(description=StatusCommand.__doc__)
    rollback: CliSubCommand[RollbackCommand] = Field(description=RollbackCommand.__doc__)
    prune: CliSubCommand[PruneCommand] = Field(description=PruneCommand.__doc__)
    simulate: CliSubCommand[SimulateCommand] = Field(description=SimulateCommand.__doc__)
    score: CliSubCommand[ScoreCommand] = Field(description=ScoreCommand.__doc__)
    generate: CliSubCommand[GenerateCommand] = Field(description=GenerateCommand.__doc__)
    # `validate` is a BaseModel method: the field has another name, the command keeps its own.
    validate_snapshot: CliSubCommand[ValidateCommand] = Field(
        alias="validate", description=ValidateCommand.__doc__
    )
    automation: CliSubCommand[AutomationCommand] = Field(description=AutomationCommand.__doc__)
    source: CliSubCommand[SourceCommand] = Field(description=SourceCommand.__doc__)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The command line only: flow parameters never come from the environment."""
        return (init_settings,)


def _flag(loc: tuple[int | str, ...]) -> str:
    """`('run', 'rule', 'min_improvement', 0)` -> `--rule.min-improvement: `."""
    names = [part.replace("_", "-") for part in loc[1:] if isinstance(part, str)]
    return "--" + ".".join(names) + ": " if names else ""


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        shown = "" if isinstance(given, dict | BaseModel) else f" (got {given!r})"
        problems.append(f"{_flag(error['loc'])}{message}{shown}")
    return "invalid parameters: " + "; ".join(problems)


def parse(argv: Sequence[str]) -> tuple[str, Command]:
    """The command's name and its validated options; `UsageError` (exit 2) naming the flag."""
    try:
        root = CliApp.run(ChurnRetrainCli, cli_args=list(argv))
    except ValidationError as exc:
        raise UsageError(_one_line(exc)) from None
    except SettingsError as exc:
        message = str(exc).removeprefix("error parsing CLI: ")
        raise UsageError(f"{message} (see churn-retrain --help)") from None
    for name, field in ChurnRetrainCli.model_fields.items():
        if (command := getattr(root, name)) is not None:
            return field.alias or name, command
    names = ", ".join(field.alias or name for name, field in ChurnRetrainCli.model_fields.items())
    raise UsageError(f"a command is needed: {names} (see churn-retrain --help)")
