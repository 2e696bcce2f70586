"""`churn-retrain`: run the monthly retrain (and friends) from a shell.

Exit status: 0 the run completed (promoted or kept); 2 bad command line; 3 the snapshot was
rejected (nothing trained, champion untouched); 4 training failed; 5 tracking server unreachable;
1 anything else (a crash: see the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tasks.report import DecisionRecord
    from tasks.settings import Settings

_Params = TypeVar("_Params", bound="BaseModel")

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USAGE = 2


def _prepare_environment(settings: Settings) -> None:
    """Keep Prefect's local state under the project's home unless the user chose otherwise.

    Runs before Prefect is imported: Prefect reads its settings once, at import.
    """
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the leaf
        os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    # No usage statistics: GX and the temporary Prefect server would otherwise try to send some.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server's 20 s start timeout was hit on a busy 2-core machine (load ~5).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _import_training_stack() -> None:
    from tasks.model import keep_pycaret_quiet

    keep_pycaret_quiet()
    import great_expectations  # noqa: F401
    import pycaret.classification  # noqa: F401


def _warm_imports() -> None:
    """Import GX and PyCaret (~6 s) while Prefect's temporary server starts in its own process.

    The two overlap on a 2-core machine; Python's import locks make a later import of the same
    module in the flow simply wait for this one.
    """
    threading.Thread(target=_import_training_stack, name="warm-imports", daemon=True).start()


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
        "--models", help="comma-separated PyCaret model ids (default lr,ada,lightgbm), or all"
    )
    run.add_argument("--folds", type=int, help="cross-validation folds (default 5)")
    run.add_argument("--budget-minutes", type=float, help="time budget for model comparison")
    run.add_argument("--holdout-fraction", type=float, help="share held out for the comparison")
    run.add_argument("--min-improvement", type=float, help="required gain over the champion")
    run.add_argument("--floor", type=float, help="absolute minimum of the metric")
    run.add_argument("--rows", type=int, help="rows to generate when no --data (default 7043)")
    run.add_argument("--drift", type=float, help="drift strength of generated data, 0..1")
    run.add_argument("--scenario", help="drift scenario: none, price_rise, fibre_launch")
    run.add_argument("--json", action="store_true", help="print the decision record as JSON")

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
        help="create the 'retrain failed' Prefect automation on the server in PREFECT_API_URL",
    )
    auto.add_argument(
        "--block", required=True, help="notification block as TYPE/NAME, e.g. slack-webhook/alerts"
    )
    auto.add_argument(
        "--file", type=Path, help="automation YAML (default: automations/retrain-failed.yaml)"
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
    }
    rule = {"min_improvement": args.min_improvement, "floor": args.floor}
    params = {k: v for k, v in given.items() if v is not None}
    if any(v is not None for v in rule.values()):
        params["rule"] = {k: v for k, v in rule.items() if v is not None}
    return params


def summary(record: DecisionRecord) -> str:
    """What a person needs after a run: the verdict, both scores, where to look."""
    metric = record.rule.metric
    ch = record.challenger
    lines = [
        f"churn-retrain {record.period}: {record.verdict.upper()}",
        f"  data         {record.data_source} ({record.rows:,} rows, {record.data_digest})",
        f"  validation   {record.validation}",
        *([f"  drift        {record.drift.splitlines()[0]}"] if record.drift else []),
        f"  challenger   v{ch.version} {ch.algorithm}: holdout {metric} "
        f"{ch.holdout[metric]:.4f} (CV {ch.cv.get(metric, float('nan')):.4f}, "
        f"{record.holdout_rows:,} holdout rows)",
    ]
    if record.champion is None:
        lines.append("  champion     none before this run")
    else:
        lines.append(
            f"  champion     v{record.champion.version}: holdout {metric} "
            f"{record.champion.holdout[metric]:.4f} on the same rows"
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
    from flows.retrain import RetrainParameters, retrain

    params = _validated(RetrainParameters, _run_parameters(args))
    _warm_imports()
    record = retrain(params)
    if args.json:
        print(json.dumps(record.model_dump(mode="json")))
    else:
        print(summary(record))
    return EXIT_OK


def _score(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.score import ScoreParameters, score

    given = {
        "data": args.data,
        "period": args.period,
        "output": args.output,
        "chunk_rows": args.chunk_rows,
    }
    try:
        params = ScoreParameters.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        print(f"churn-retrain: invalid parameters: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(score(params).describe())
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    from tasks.generate import generate_snapshot

    frame = generate_snapshot(
        args.period, seed=args.seed, rows=args.rows, drift=args.drift, scenario=args.scenario
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame):,} rows to {args.out}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.validate import ValidateParameters, validate
    from tasks.errors import SnapshotRejected
    from tasks.gate_report import REPORT_JSON, report_directory
    from tasks.settings import Settings

    drift: dict[str, Any] = {"enabled": not args.no_drift}
    if args.drift_warn is not None:
        drift["warn"] = args.drift_warn
    if args.drift_fail is not None:
        drift["fail"] = args.drift_fail
    given = {"data": args.data, "period": args.period, "suite": args.suite, "drift_gate": drift}
    try:
        params = ValidateParameters.model_validate(
            {k: v for k, v in given.items() if v is not None}
        )
    except ValidationError as exc:
        print(f"churn-retrain: invalid parameters: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
    from tasks.alerts import AUTOMATION_FILE, automation_definition, install_automation

    path = args.file or AUTOMATION_FILE
    if args.print:
        print(automation_definition(path, block=args.block).model_dump_json(indent=2))
        return EXIT_OK
    automation_id = install_automation(path, block=args.block)
    print(f"created automation from {path} (id {automation_id}), notifying {args.block}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from tasks.errors import ChurnRetrainError
    from tasks.settings import Settings

    _prepare_environment(Settings())
    try:
        commands = {
            "run": _run,
            "score": _score,
            "generate": _generate,
            "validate": _validate,
            "automation": _automation,
        }
        return commands[args.command](args)
    except _UsageError as exc:
        print(f"churn-retrain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ChurnRetrainError as exc:
        print(f"churn-retrain: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        print("churn-retrain: the run crashed (see the traceback above)", file=sys.stderr)
        return EXIT_CRASH


if __name__ == "__main__":
    sys.exit(main())
