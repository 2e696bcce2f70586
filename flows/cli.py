"""`churn-retrain`: run the monthly retrain (and friends) from a shell.

Exit status: 0 the run completed (promoted or kept); 2 bad command line (or a refused rollback:
nothing to roll back to, unknown version); 3 the snapshot was rejected (nothing trained, champion
untouched); 4 training failed; 5 tracking server unreachable; 1 anything else (a crash: see the
traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

    from flows.temporary_server import TemporaryServer
    from tasks.decision.record import DecisionRecord
    from tasks.registry.status import RegistryStatus, VersionSummary
    from tasks.settings import Settings

_Params = TypeVar("_Params", bound="BaseModel")

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USAGE = 2


def _prepare_environment(settings: Settings, command: str) -> None:
    """Keep Prefect's local state under the project's home unless the user chose otherwise.

    Runs before Prefect is imported: Prefect reads its settings once, at import.
    """
    if command == "simulate":
        # The month table is the output; the flows' own logs still reach the Prefect API.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the leaf
        os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    # No usage statistics: GX and the temporary Prefect server would otherwise try to send some.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server's 20 s start timeout was hit on a busy 2-core machine (load ~5).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _import_training_stack() -> None:
    from tasks.training.model import keep_pycaret_quiet

    keep_pycaret_quiet()
    import great_expectations  # noqa: F401
    import pycaret.classification  # noqa: F401


def _warm_imports() -> None:
    """Import GX and PyCaret (~6 s) while the temporary Prefect server boots in its own process.

    In the main thread, not a helper thread: two threads importing numpy/MLflow at once
    deadlock on partially initialised modules or race on `os.environ` (numpy sets and deletes
    OPENBLAS_MAIN_FREE while Prefect copies the environment). The server process still overlaps.
    """
    _import_training_stack()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn-retrain", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="retrain for one month and promote the winner")
    run.add_argument(
        "--data",
        help="CSV path or http(s) URL; may contain {period}. "
        "Default: generate a Telco-shaped snapshot for the period.",
    )
    run.add_argument("--period", help="month to retrain for, YYYY-MM (default: this month, UTC)")
    run.add_argument("--seed", type=int, default=42, help="seed for split and training (42)")
    run.add_argument(
        "--models", help="comma-separated PyCaret model ids (default lr,lightgbm), or all"
    )
    run.add_argument("--folds", type=int, help="cross-validation folds (default 5)")
    run.add_argument("--budget-minutes", type=float, help="time budget for model comparison")
    run.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the flow's submitted tasks (training) on a Dask cluster through prefect-dask's "
        "DaskTaskRunner: a scheduler address (tcp://host:8786), or 'local' for a LocalCluster",
    )
    run.add_argument(
        "--distributed-training",
        action="store_true",
        default=None,
        help="with --dask: cross-validate the candidate models in parallel on the cluster",
    )
    run.add_argument("--holdout-fraction", type=float, help="share held out for the comparison")
    run.add_argument("--min-improvement", type=float, help="required gain over the champion")
    run.add_argument("--floor", type=float, help="absolute minimum of the metric")
    run.add_argument("--rows", type=int, help="rows to generate when no --data (default 7043)")
    run.add_argument("--drift", type=float, help="drift strength of generated data, 0..1")
    run.add_argument("--scenario", help="drift scenario: none, price_rise, fibre_launch")
    run.add_argument("--json", action="store_true", help="print the decision record as JSON")

    run.add_argument(
        "--method", choices=["bootstrap", "delong", "point"], help="how the difference is judged"
    )
    run.add_argument("--metric", help="holdout metric the models are ranked by (roc_auc)")

    status = commands.add_parser("status", help="the champion, its scores and the history")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    back = commands.add_parser("rollback", help="move the champion back (previous or --to)")
    back.add_argument("--to", dest="to_version", help="version to make champion")
    back.add_argument("--reason", default="manual rollback", help="why, for the history")
    back.add_argument("--json", action="store_true", help="print the history event as JSON")

    sim = commands.add_parser(
        "simulate", help="run the real flow over generated months with drift; plot the champion"
    )
    sim.add_argument("--months", type=int, default=12, help="months to simulate (12)")
    sim.add_argument("--start", default="2026-01", help="first month, YYYY-MM (2026-01)")
    sim.add_argument(
        "--scenario", default="price_rise", help="price_rise (default), fibre_launch or none"
    )
    sim.add_argument("--drift-from", type=int, default=4, help="first month with drift (4)")
    sim.add_argument("--max-drift", type=float, default=1.0, help="drift in the last month (1)")
    sim.add_argument("--rows", type=int, default=7043, help="customers per month (7043)")
    sim.add_argument("--models", default="lr", help="comma-separated PyCaret model ids (lr)")
    sim.add_argument("--folds", type=int, default=5, help="cross-validation folds (5)")
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--metric", default="roc_auc", help="metric the rule ranks by (roc_auc)")
    sim.add_argument(
        "--home",
        type=Path,
        help="state directory of the simulation (default: a new one under "
        "<home>/simulations; never the real registry)",
    )

    score = commands.add_parser("score", help="score customers with the champion, in chunks")
    score.add_argument(
        "--data", required=True, help="CSV path or http(s) URL; may contain {period}"
    )
    score.add_argument("--period", help="month, YYYY-MM (default: this month)")
    score.add_argument("--output", help="predictions file, .csv or .parquet")
    score.add_argument("--chunk-rows", type=int, help="rows per chunk (default 100000)")

    gen = commands.add_parser("generate", help="write a generated Telco-shaped snapshot as CSV")
    gen.add_argument("--period", required=True, help="month, YYYY-MM")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--rows", type=int, default=7043)
    gen.add_argument("--drift", type=float, default=0.0)
    gen.add_argument("--scenario", default="none")
    gen.add_argument("--out", type=Path, required=True, help="CSV file to write")

    val = commands.add_parser(
        "validate", help="check a snapshot with the data gate, without training (exit 3: rejected)"
    )
    val.add_argument("--data", required=True, help="CSV path or http(s) URL; may contain {period}")
    val.add_argument("--period", help="month the snapshot is for, YYYY-MM (default: this month)")
    val.add_argument(
        "--suite", help="expectation suite JSON (default: expectations/telco_snapshot.json)"
    )
    val.add_argument("--drift-warn", type=float, help="PSI at which a column is reported (0.1)")
    val.add_argument(
        "--drift-fail", type=float, help="PSI at which the snapshot is rejected (0.25)"
    )
    val.add_argument("--no-drift", action="store_true", help="skip the drift check")
    val.add_argument("--json", action="store_true", help="print the gate report as JSON")

    auto = commands.add_parser(
        "automation",
        help="create the Prefect automations on the server in PREFECT_API_URL: alert when a "
        "retrain fails, crashes or times out, and mark a run Crashed when its heartbeats stop",
    )
    auto.add_argument(
        "--block", required=True, help="notification block as TYPE/NAME, e.g. slack-webhook/alerts"
    )
    auto.add_argument(
        "--file", type=Path, help="one automation YAML (default: both files in automations/)"
    )
    auto.add_argument("--print", action="store_true", help="print the JSON instead of creating it")
    return parser


def _run_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flow parameters the user set; everything else keeps the flow's defaults."""
    given: dict[str, Any] = {
        "data": args.data,
        "period": args.period,
        "seed": args.seed,
        "folds": args.folds,
        "budget_minutes": args.budget_minutes,
        "holdout_fraction": args.holdout_fraction,
        "generated_rows": args.rows,
        "drift": args.drift,
        "scenario": args.scenario,
        "models": args.models.split(",") if args.models else None,
        "distributed_training": args.distributed_training,
    }
    rule = {
        "min_improvement": args.min_improvement,
        "floor": args.floor,
        "method": args.method,
        "metric": args.metric,
    }
    params = {k: v for k, v in given.items() if v is not None}
    if any(v is not None for v in rule.values()):
        params["rule"] = {k: v for k, v in rule.items() if v is not None}
    return params


def summary(record: DecisionRecord) -> str:
    """What a person needs after a run: the verdict, both scores, where to look."""
    metric = record.rule.metric
    ch = record.challenger
    nan = float("nan")
    lines = [
        f"churn-retrain {record.period}: {record.verdict.upper()}",
        f"  data         {record.data_source} ({record.rows:,} rows, {record.data_digest})",
        f"  validation   {record.validation}",
        *([f"  drift        {record.drift.splitlines()[0]}"] if record.drift else []),
        f"  challenger   v{ch.version} {ch.algorithm}: holdout {metric} "
        f"{ch.holdout.get(metric, nan):.4f} (CV {ch.cv.get(metric, nan):.4f}, "
        f"{record.holdout_rows:,} holdout rows)",
    ]
    if record.champion is None:
        lines.append(
            f"  champion     none before this run ({record.champion_problem})"
            if record.champion_problem
            else "  champion     none before this run"
        )
    else:
        lines.append(
            f"  champion     v{record.champion.version}: holdout {metric} "
            f"{record.champion.holdout.get(metric, nan):.4f} on the same rows"
        )
    if record.holdout_split is not None and record.holdout_split.unseen_rows is not None:
        lines.append(
            f"  holdout      {record.holdout_split.holdout_rows:,} rows the champion never "
            f"trained on ({record.holdout_split.excluded_rows:,} rows excluded)"
        )
    lines += [
        f"  decision     {record.reason}",
        f"  champion now v{record.champion_version_after} (models:/{record.model_name}@champion)"
        if record.champion_version_after
        else "  champion now none",
        f"  took         {sum(record.stage_seconds.values()):.1f} s "
        + " ".join(f"{k}={v:.1f}" for k, v in record.stage_seconds.items()),
        f"  MLflow       run {record.mlflow_run_id} on {record.tracking_uri}",
        f"  look at      {record.mlflow_run_url} (decision.json; local store: `make mlflow-ui`)",
    ]
    return "\n".join(lines)


class _UsageError(Exception):
    """Parameters that do not validate: exit status 2, nothing run."""


def _validated(model: type[_Params], values: dict[str, Any]) -> _Params:
    """The flow's parameter model from the options the user set (unset ones keep defaults)."""
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise _UsageError(f"invalid parameters: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    params = _validated(RetrainParameters, _run_parameters(args))
    flow = retrain
    if args.dask:
        from prefect_dask import DaskTaskRunner

        # The scheduler, nannies and client log every connection at INFO, 30-odd lines a run
        # that bury the run's own log; their warnings and errors still show.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        runner = DaskTaskRunner() if args.dask == "local" else DaskTaskRunner(address=args.dask)
        # Its futures subclass PrefectFuture; `with_options` is typed invariantly.
        flow = retrain.with_options(task_runner=runner)  # type: ignore[arg-type]
    _prepare_local_store()
    _ready(args)
    record = flow(params)
    if args.json:
        print(json.dumps(record.model_dump(mode="json")))
    else:
        print(summary(record))
    return EXIT_OK


def _score(args: argparse.Namespace) -> int:
    from flows.parameters import ScoreParameters
    from flows.score import score

    given = {"data": args.data, "period": args.period, "output": args.output}
    params = _validated(ScoreParameters, {**given, "chunk_rows": args.chunk_rows})
    _ready(args)
    print(score(params).describe())
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from tasks.registry.status import registry_status
    from tasks.settings import Settings
    from tasks.tracking.runs import configure_tracking

    settings = Settings()
    if settings.is_local and not (settings.home / "mlflow.db").is_file():
        print(f"no registry yet under {settings.home} (run `churn-retrain run` first)")
        return EXIT_OK
    tracking = configure_tracking.fn(settings)
    status = registry_status(tracking.model_name)
    if args.json:
        print(json.dumps(None if status is None else status.model_dump(mode="json")))
        return EXIT_OK
    if status is None:
        print(f"model {tracking.model_name!r} is not registered yet on {tracking.tracking_uri}")
        return EXIT_OK
    print(status_text(status, tracking.tracking_uri))
    return EXIT_OK


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
    if status.missing_champion:
        lines.append(f"  {'':<18} ({status.missing_champion})")
    lines += side("previous-champion", status.previous_champion)
    lines += side("challenger", status.challenger)
    lines += ["", "promotion history:"]
    if not status.history:
        lines.append("  (none)")
    else:
        lines.append(
            f"  {'#':>3}  {'when (UTC)':<25} {'action':<9} {'from':>5} {'to':>5}  "
            f"{'by':<12} decision run"
        )
        for e in status.history:
            lines.append(
                f"  {e.seq:>3}  {e.at:<25} {e.action:<9} {_ver(e.from_version):>5} "
                f"{_ver(e.to_version):>5}  {e.by:<12} {e.decision_run or '-'}"
            )
    return "\n".join(lines)


def _ver(version: str | None) -> str:
    return "-" if version is None else f"v{version}"


def _rollback(args: argparse.Namespace) -> int:
    from flows.parameters import RollbackParameters
    from flows.rollback import rollback

    params = _validated(RollbackParameters, {"to_version": args.to_version, "reason": args.reason})
    _ready(args)
    event = rollback(params)
    if args.json:
        print(json.dumps(event.model_dump(mode="json")))
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from flows.parameters import SimulateParameters
    from flows.simulate import HEADER, month_line, simulate

    params = _validated(
        SimulateParameters,
        dict(
            months=args.months,
            start=args.start,
            scenario=args.scenario,
            drift_from=args.drift_from,
            max_drift=args.max_drift,
            rows=args.rows,
            models=args.models.split(","),
            folds=args.folds,
            seed=args.seed,
            rule={"metric": args.metric},
        ),
    )
    from tasks.settings import Settings

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    home = args.home or Settings().home / "simulations" / f"{params.scenario}-{stamp}"
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
    _ready(args)
    months, plot = simulate(
        params, out_dir=home, on_month=lambda m: print(month_line(m), flush=True)
    )
    from tasks.registry.status import registry_status
    from tasks.tracking.runs import configure_tracking

    tracking = configure_tracking.fn(Settings())
    status = registry_status(tracking.model_name)
    if status is not None:
        print("\n" + status_text(status, tracking.tracking_uri))
    promotions = sum(m.promoted for m in months)
    print(f"\n{promotions} promotion(s) in {len(months)} months; plot: {plot}")
    print(
        f"MLflow UI for this simulation: CHURN_RETRAIN_HOME={home} make mlflow-ui",
    )
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    from tasks.data.generate import generate_snapshot

    frame = generate_snapshot(
        args.period, seed=args.seed, rows=args.rows, drift=args.drift, scenario=args.scenario
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame):,} rows to {args.out}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from flows.parameters import ValidateParameters
    from flows.validate import validate
    from tasks.errors import SnapshotRejected
    from tasks.gate.report import REPORT_JSON, report_directory
    from tasks.settings import Settings

    drift: dict[str, Any] = {"enabled": not args.no_drift}
    if args.drift_warn is not None:
        drift["warn"] = args.drift_warn
    if args.drift_fail is not None:
        drift["fail"] = args.drift_fail
    given = {"data": args.data, "period": args.period, "suite": args.suite, "drift_gate": drift}
    params = _validated(ValidateParameters, given)
    _ready(args)
    state = validate(params, return_state=True)
    outcome = state.result(raise_on_failure=False)
    report_dir = report_directory(Settings(), str(state.state_details.flow_run_id))
    if args.json and (report_dir / REPORT_JSON).is_file():
        gate = json.loads((report_dir / REPORT_JSON).read_text())
        print(json.dumps({**gate, "report": str(report_dir / "validation.html")}))
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, SnapshotRejected):
            raise outcome
        print(f"churn-retrain: SnapshotRejected: {outcome}", file=sys.stderr)
        if (report_dir / "validation.html").is_file():
            print(f"  report       {report_dir / 'validation.html'}", file=sys.stderr)
        return outcome.exit_code
    if not args.json:
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


def _automation(args: argparse.Namespace) -> int:
    from tasks.alerts.automations import AUTOMATION_FILES, automation_definition, install_automation

    paths = [args.file] if args.file else list(AUTOMATION_FILES)
    if args.print:
        for path in paths:
            print(automation_definition(path, block=args.block).model_dump_json(indent=2))
        return EXIT_OK
    for path in paths:
        automation_id = install_automation(path, block=args.block)
        print(f"created automation from {path} (id {automation_id})")
    print(f"notifications go through the block {args.block}")
    return EXIT_OK


#: Commands that run a flow (each calls `_ready` before it does).
_FLOW_COMMANDS = frozenset({"run", "score", "rollback", "simulate", "validate"})
#: Commands that train, so GX and PyCaret are worth importing ahead of time.
_TRAINING_COMMANDS = frozenset({"run", "simulate"})


def _start_temporary_server(command: str) -> TemporaryServer | None:
    """With no Prefect API configured (environment, profile, or a test harness), start a server
    for this process now, so it boots while the command imports its flow; else None."""
    if command not in _FLOW_COMMANDS:
        return None
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return None
    from flows.temporary_server import TemporaryServer

    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"))
    server = TemporaryServer(timeout=timeout)
    server.start()
    if command in _TRAINING_COMMANDS:
        _warm_imports()
    return server


def _ready(args: argparse.Namespace) -> None:
    """Right before the flow runs: wait for the temporary server, if this process started one."""
    server: TemporaryServer | None = getattr(args, "server", None)
    if server is not None:
        server.wait()


def _prepare_local_store() -> None:
    """Create the local MLflow store while the server boots (a first run migrates ~2 s)."""
    from tasks.settings import Settings
    from tasks.tracking.runs import configure_tracking

    settings = Settings()
    if settings.is_local:  # a remote server is checked inside the flow, where failures alert
        configure_tracking.fn(settings)


def _using(server: TemporaryServer | None) -> AbstractContextManager[object]:
    """Prefect settings while the command runs: this process's temporary server, if any, and no
    flow-run heartbeats. They let a long-lived server spot crashed runs; this one dies with the
    process, and stopping the heartbeat thread costs each flow up to 1 s."""
    if server is None:
        return nullcontext()
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    return temporary_settings(
        updates={PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    )


def _stop_temporary_server(server: TemporaryServer | None) -> None:
    """Send Prefect's queued logs and events, then end the server (they would fail after)."""
    if server is None:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception as exc:  # a lost log line must not turn a finished run into a crash
        print(f"churn-retrain: could not flush Prefect logs: {exc}", file=sys.stderr)
    server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "distributed_training", None) and not args.dask:
        parser.error("--distributed-training needs --dask ADDRESS (or --dask local)")
    from flows.temporary_server import ServerStartFailed
    from tasks.errors import ChurnRetrainError
    from tasks.settings import Settings

    _prepare_environment(Settings(), args.command)
    server = None
    try:
        server = args.server = _start_temporary_server(args.command)
        commands = {
            "run": _run,
            "score": _score,
            "status": _status,
            "rollback": _rollback,
            "simulate": _simulate,
            "generate": _generate,
            "validate": _validate,
            "automation": _automation,
        }
        with _using(server):
            return commands[args.command](args)
    except _UsageError as exc:
        print(f"churn-retrain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ServerStartFailed as exc:
        print(f"churn-retrain: {exc}", file=sys.stderr)
        return EXIT_CRASH
    except ChurnRetrainError as exc:
        print(f"churn-retrain: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        print("churn-retrain: the run crashed (see the traceback above)", file=sys.stderr)
        return EXIT_CRASH
    finally:
        _stop_temporary_server(server)


if __name__ == "__main__":
    sys.exit(main())
