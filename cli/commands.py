"""What each `churn-retrain` command does once its options are parsed (cli/main.py parses them).

Each handler takes the command's validated model and `ready`, which waits for the Prefect server
this process started (if any): called right before the flow runs, so the server boots while the
command imports its flow. Each returns the exit status.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from tasks.errors import EXIT_OK

if TYPE_CHECKING:
    from cli.options import (
        AutomationCommand,
        BackfillCommand,
        GenerateCommand,
        PruneCommand,
        ReplayCommand,
        RollbackCommand,
        RunCommand,
        ScoreCommand,
        SimulateCommand,
        SourceCommand,
        StatusCommand,
        ValidateCommand,
    )
    from tasks.registry.status import RegistryStatus, VersionSummary

_Params = TypeVar("_Params", bound=BaseModel)
Ready = Callable[[], None]


def _on_dask(flow: Any, address: str | None) -> Any:
    """The flow with its tasks on the Dask cluster at `address` (`local`: a LocalCluster)."""
    if not address:
        return flow
    from prefect_dask import DaskTaskRunner

    # The scheduler, nannies and client log every connection at INFO, 30-odd lines a run
    # that bury the run's own log; their warnings and errors still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    runner = DaskTaskRunner() if address == "local" else DaskTaskRunner(address=address)
    return flow.with_options(task_runner=runner)


def flow_parameters(command: BaseModel, model: type[_Params]) -> _Params:
    """The flow's own parameters out of a command's options (the CLI-only ones left out)."""
    return model.model_validate({name: getattr(command, name) for name in model.model_fields})


def run(command: RunCommand, ready: Ready) -> int:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain
    from tasks.report.summary import summary

    params = flow_parameters(command, RetrainParameters)
    flow = _on_dask(retrain, command.dask)
    _prepare_local_store()
    ready()
    record = flow(params)
    if command.as_json:
        print(json.dumps(record.model_dump(mode="json")))
    else:
        print(summary(record))
    return EXIT_OK


def backfill(command: BackfillCommand, ready: Ready) -> int:
    from flows.backfill import backfill as backfill_flow
    from flows.parameters import BackfillParameters

    params = flow_parameters(command, BackfillParameters)
    _prepare_local_store()
    ready()
    report = backfill_flow(params)
    print(json.dumps(report.model_dump(mode="json")) if command.as_json else report.text())
    return EXIT_OK


def replay(command: ReplayCommand, ready: Ready) -> int:
    from flows.parameters import ReplayParameters
    from flows.replay import replay as replay_month
    from tasks.errors import ReplayDiffers

    ready()
    result = replay_month(flow_parameters(command, ReplayParameters))
    print(result.model_dump_json() if command.as_json else result.text())
    if not result.identical:
        raise ReplayDiffers(
            f"replay of {result.period} differs from its record in "
            + ", ".join(d.path for d in result.differences)
            + (f"; {result.code_note}" if result.code_note else "")
        )
    return EXIT_OK


def score(command: ScoreCommand, ready: Ready) -> int:
    from flows.parameters import ScoreParameters
    from flows.score import score as score_flow

    params = flow_parameters(command, ScoreParameters)
    ready()
    print(_on_dask(score_flow, command.dask)(params).describe())
    return EXIT_OK


def status(command: StatusCommand, ready: Ready) -> int:
    from tasks.registry.status import registry_status
    from tasks.settings import Settings
    from tasks.tracking.runs import configure_tracking

    settings = Settings()
    if settings.is_local and not (settings.home / "mlflow.db").is_file():
        print(f"no registry yet under {settings.home} (run `churn-retrain run` first)")
        return EXIT_OK
    tracking = configure_tracking.fn(settings, command.model.resolve(settings))
    found = _with_reign_plot(registry_status(tracking.model_name), settings.reports_dir)
    if command.as_json:
        print(json.dumps(None if found is None else found.model_dump(mode="json")))
        return EXIT_OK
    if found is None:
        print(f"model {tracking.model_name!r} is not registered yet on {tracking.tracking_uri}")
        return EXIT_OK
    print(status_text(found, tracking.tracking_uri))
    return EXIT_OK


def _with_reign_plot(found: RegistryStatus | None, directory: Path) -> RegistryStatus | None:
    """The status with its champion's reign plotted into `directory` (when there are scores)."""
    if found is None or found.reign is None or not found.reign.has_scores:
        return found
    from tasks.errors import storage_problem
    from tasks.report.plots import reign_figure

    try:
        plot = reign_figure(found.reign, directory / found.reign.plot_name())
    except OSError as exc:  # status only reads: a read-only or full disk costs the picture only
        if (problem := storage_problem(exc)) is None:
            raise
        return found.model_copy(update={"reign_plot": f"not written ({directory}: {problem[0]})"})
    return found.model_copy(update={"reign_plot": str(plot)})


def status_text(status: RegistryStatus, where: str) -> str:
    """The champion, its decision scores and the promotion history as a table."""

    def side(label: str, v: VersionSummary | None) -> list[str]:
        if v is None:
            return [f"  {label:<18} none"]
        scores = " ".join(
            f"{k}={v.scores[k]:.4f}"
            for k in ("roc_auc", "pr_auc", "brier", "recall")
            if k in v.scores
        )
        out = [
            f"  {label:<18} v{v.version} ({v.period or '?'}, verdict {v.verdict or '?'}, "
            f"registered {v.registered_at}, run {v.run_id})"
        ]
        if scores:
            out.append(f"  {'':<18} holdout {scores}")
        if v.difference:
            out.append(f"  {'':<18} vs the champion of its run: {v.difference}")
        return out

    lines = [f"{status.model_name} on {where}: {status.versions} version(s)"]
    lines += side("champion", status.champion)
    latest = status.latest_comparison
    if latest and latest["scores"]:
        scores = " ".join(
            f"{k}={latest['scores'][k]:.4f}"
            for k in ("roc_auc", "pr_auc", "brier", "recall")
            if k in latest["scores"]
        )
        lines.append(
            f"  {'':<18} latest retrain {latest['period']} ({latest['verdict']}): {scores}"
        )
    if status.reign is not None:
        lines += [f"  {'':<18} {line}" for line in status.reign.table()]
    if status.reign_plot:
        lines.append(f"  {'':<18} reign plot: {status.reign_plot}")
    if status.missing_champion:
        lines.append(f"  {'':<18} ({status.missing_champion})")
    lines += side("previous-champion", status.previous_champion)
    lines += side("challenger", status.challenger)
    lines += ["", "promotion history:"]
    if not status.history:
        lines.append("  (none)")
    else:
        lines.append(
            f"  {'#':>3}  {'when (UTC)':<29} {'action':<9} {'from':>5} {'to':>5}  "
            f"{'by':<12} decision run"
        )
        for e in status.history:
            lines.append(
                f"  {e.seq:>3}  {e.at:<29} {e.action:<9} {_ver(e.from_version):>5} "
                f"{_ver(e.to_version):>5}  {e.by:<12} {e.decision_run or '-'}"
            )
    return "\n".join(lines)


def _ver(version: str | None) -> str:
    return "-" if version is None else f"v{version}"


def rollback(command: RollbackCommand, ready: Ready) -> int:
    from flows.parameters import RollbackParameters
    from flows.rollback import rollback as rollback_flow

    params = flow_parameters(command, RollbackParameters)
    ready()
    event = rollback_flow(params)
    if command.as_json:
        print(json.dumps(event.model_dump(mode="json")))
    return EXIT_OK


def prune(command: PruneCommand, ready: Ready) -> int:
    from flows.parameters import PruneParameters
    from flows.prune import prune as prune_flow

    params = flow_parameters(command, PruneParameters)
    ready()
    result = prune_flow(params)
    print(json.dumps(result.model_dump(mode="json")) if command.as_json else result.describe())
    return EXIT_OK


def simulate(command: SimulateCommand, ready: Ready) -> int:
    from datetime import UTC, datetime

    from flows.parameters import SimulateParameters
    from flows.simulate import HEADER, month_line
    from flows.simulate import simulate as simulate_flow
    from tasks.months.report import plot_reigns
    from tasks.settings import Settings

    params = flow_parameters(command, SimulateParameters)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    home = command.home or Settings().home / "simulations" / f"{params.scenario}-{stamp}"
    # A simulation never touches the real registry: its own local store, whatever is configured.
    os.environ["CHURN_RETRAIN_HOME"] = str(home)
    for name in (
        "CHURN_RETRAIN_TRACKING_URI",
        "CHURN_RETRAIN_REGISTRY_URI",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
    ):
        os.environ.pop(name, None)
    print(
        f"simulating {params.months} months of {params.scenario} from {params.start} "
        f"(drift from month {params.drift_from}), {params.rows:,} customers, models "
        f"{','.join(params.models)}; state in {home}\n\n{HEADER}",
        flush=True,
    )
    _prepare_local_store()
    ready()
    months, plot = simulate_flow(
        params, out_dir=home, on_month=lambda m: print(month_line(m), flush=True)
    )
    from tasks.registry.status import registry_status
    from tasks.tracking.runs import configure_tracking

    tracking = configure_tracking.fn(Settings())
    found = registry_status(tracking.model_name)
    if found is not None:
        print("\n" + status_text(found, tracking.tracking_uri))
        champions = [e.to_version for e in found.history]
        for reign in plot_reigns(tracking.model_name, champions, params.rule, home):
            print(f"reign of {reign.stem.rsplit('-', 1)[-1]}: {reign}")
    promotions = sum(m.promoted for m in months)
    print(f"\n{promotions} promotion(s) in {len(months)} months; plot: {plot}")
    print(
        f"MLflow UI for this simulation: CHURN_RETRAIN_HOME={home} make mlflow-ui",
    )
    return EXIT_OK


def generate(command: GenerateCommand, ready: Ready) -> int:
    from tasks.data.generate import generate_snapshot

    frame = generate_snapshot(
        command.period,
        seed=command.seed,
        rows=command.generated_rows,
        drift=command.drift,
        scenario=command.scenario,
    )
    command.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(command.out, index=False)
    print(f"wrote {len(frame):,} rows to {command.out}")
    return EXIT_OK


def validate(command: ValidateCommand, ready: Ready) -> int:
    from flows.parameters import ValidateParameters
    from flows.validate import validate as validate_flow
    from tasks.errors import SnapshotRejected
    from tasks.gate.report import REPORT_JSON, report_directory
    from tasks.settings import Settings
    from tasks.tracking.connection import open_existing_local_store

    params = flow_parameters(command, ValidateParameters)
    open_existing_local_store(Settings())  # for the drift check, while the server boots
    ready()
    state = _on_dask(validate_flow, command.dask)(params, return_state=True)
    outcome = state.result(raise_on_failure=False)
    report_dir = report_directory(Settings(), str(state.state_details.flow_run_id))
    if command.as_json and (report_dir / REPORT_JSON).is_file():
        gate = json.loads((report_dir / REPORT_JSON).read_text())
        print(json.dumps({**gate, "report": str(report_dir / "validation.html")}))
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, SnapshotRejected):
            raise outcome
        print(f"churn-retrain: SnapshotRejected: {outcome}", file=sys.stderr)
        if (report_dir / "validation.html").is_file():
            print(f"  report       {report_dir / 'validation.html'}", file=sys.stderr)
        return outcome.exit_code
    if not command.as_json:
        print(
            "\n".join(
                [
                    f"snapshot {outcome.period}: PASSED",
                    f"  data         {outcome.source} ({outcome.rows:,} rows, {outcome.digest})",
                    f"  validation   {outcome.validation}",
                    f"  drift        {outcome.drift}",
                    f"  report       {outcome.report}",
                ]
            )
        )
    return EXIT_OK


def automation(command: AutomationCommand, ready: Ready) -> int:
    from tasks.alerts.automations import AUTOMATION_FILES, automation_definition, install_automation

    paths = [command.file] if command.file else list(AUTOMATION_FILES)
    if command.print_only:
        for path in paths:
            print(automation_definition(path, block=command.block).model_dump_json(indent=2))
        return EXIT_OK
    for path in paths:
        automation_id = install_automation(path, block=command.block)
        print(f"created automation from {path} (id {automation_id})")
    print(f"notifications go through the block {command.block}")
    return EXIT_OK


def source(command: SourceCommand, ready: Ready) -> int:
    import httpx
    from prefect.settings import get_current_settings
    from prefect.variables import Variable

    from tasks.data.configured import (
        DATA_VARIABLE,
        describe_configured,
        find_configured_source,
        parse_configured,
        set_configured_source,
    )
    from tasks.errors import UsageError

    ready()
    try:
        if command.clear:
            Variable.unset(DATA_VARIABLE)
            print(f"cleared: runs without `data` now fail (Prefect Variable {DATA_VARIABLE})")
        elif command.data is not None:
            value = set_configured_source(command.data, command.source)
            print("set " + describe_configured(parse_configured(value)))
        else:
            print(describe_configured(find_configured_source()))
    except httpx.TransportError as exc:
        raise UsageError(
            f"the Prefect API at {get_current_settings().api.url} did not answer "
            f"({type(exc).__name__}): start it (make prefect-server) or set PREFECT_API_URL"
        ) from None
    return EXIT_OK


def _prepare_local_store() -> None:
    """Create the local MLflow store while the server boots (a first run migrates ~2 s)."""
    from tasks.settings import Settings
    from tasks.tracking.runs import configure_tracking

    settings = Settings()
    if settings.is_local:  # a remote server is checked inside the flow, where failures alert
        configure_tracking.fn(settings)
