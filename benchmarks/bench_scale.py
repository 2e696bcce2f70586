"""Scale benchmark: the whole retrain on generated months of 1M, 10M and 100M rows, then scoring.

    make bench-scale      # or: uv run python benchmarks/bench_scale.py [--rows 100000 1000000]
    uv run python benchmarks/bench_scale.py --months-dir /work/bench_months   # months kept

Each month is written to Parquet by generated_month.py in its own process, streamed (one
500k-row chunk, one row group, at a time, so any size fits in about 0.6 GB); with
--months-dir the files are kept there and reused when one has the right row count (a 100M
month takes minutes to write and about 1.7 GB of disk). Then each size runs in a fresh process
(so peak memory is that run's own, the generator's not included) with its own throwaway
registry against one Prefect server started before the clock, and against a champion made
first (not timed) on a 100k month of customers the large month holds too: the timed run
gates drift against it, keeps its customers out of the holdout and compares with it. Prints, per size, the seconds of every stage the decision record names (in its
order) and what is outside them, wall time, peak RSS (getrusage, the retrain's own process),
the rows trained on and held out, the goals beside the figures, and the exponent b of
time ~ rows^b (least squares on log-log; also of peak RSS and of each stage). Then the largest
month is scored from Parquet, validated batch by batch, as the `score` flow does
(bench_score_parquet.py's child, fresh process, a small lr champion); --no-scoring skips it.
Goals: the whole flow on 10M rows in at most 15 min and 8 GB (issue 17), on 100M rows in at
most 25 min and 8 GB; scoring 10M rows in at most 60 s, 100M in at most 12 min, under 2 GB
(issue 33). Writes JSON (default benchmarks/results/scale.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from generated_month import PERIOD, generation_figures, month_path, month_rows

ROOT = Path(__file__).resolve().parents[1]
#: Every size is retrained against a champion made the month before on a small month whose
#: customers are among the large month's (the generator's first chunk): a monthly run's work.
CHAMPION_ROWS, CHAMPION_PERIOD, CHAMPION_MONTH = 100_000, "2025-12", "champion-month.parquet"
GB = 1024  # MB
#: rows -> (seconds, peak RSS MB) at most for the whole retrain, (seconds, MB) under for scoring.
RETRAIN_GOALS = {10_000_000: (15 * 60, 8 * GB), 100_000_000: (25 * 60, 8 * GB)}
SCORING_GOALS = {10_000_000: (60, 2 * GB), 100_000_000: (12 * 60, 2 * GB)}


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _generate(rows: int, path: Path) -> None:
    """Write a generated month of `rows` customers to Parquet, streamed; prints a JSON line."""
    from generated_month import write_generated_month

    seconds = write_generated_month(path, rows, period=PERIOD)
    print(json.dumps(generation_figures(path, seconds)))


def _child(path: Path, period: str) -> None:
    """One retrain of the generated month at `path`; prints a JSON line."""
    from flows.parameters import RetrainParameters
    from flows.retrain import retrain

    started = time.perf_counter()
    record = retrain(RetrainParameters(period=period, data=str(path)))
    wall = time.perf_counter() - started
    split = getattr(record, "holdout_split", None)
    sample = getattr(record, "training_sample", None)
    print(
        json.dumps(
            {
                "wall_seconds": round(wall, 2),
                "stage_seconds": dict(record.stage_seconds),  # in the flow's order
                "peak_rss_mb": _peak_mb(),
                "algorithm": record.challenger.algorithm,
                "holdout_roc_auc": round(record.challenger.holdout["roc_auc"], 4),
                "holdout_rows": split.holdout_rows if split else None,
                "training_rows": sample.rows_used if sample else None,
                "verdict": record.decision.verdict,
                "notes": record.notes,
            }
        )
    )


def _champion(path: Path) -> None:
    """The small lr champion bench_score_parquet.py scores with (its own process: PyCaret)."""
    from bench_score_parquet import train_champion

    started = time.perf_counter()
    train_champion(path)
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))


def _exponent(points: list[tuple[int, float]]) -> float:
    """Slope of log(time) against log(rows)."""
    xs = [math.log(r) for r, _ in points]
    ys = [math.log(max(t, 1e-6)) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def _step(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[dict[str, Any] | None, str]:
    """Run this script with `argv` in a fresh process: its JSON line, or None and the error.

    `cwd` is a scratch folder: PyCaret writes logs.log where it is imported."""
    done = subprocess.run(
        [sys.executable, __file__, *argv], cwd=cwd, env=env, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return None, done.stderr[-3000:] or f"exit status {done.returncode}, no output"
    return json.loads(lines[-1]), ""


def _say(text: str) -> None:
    print(text, flush=True)


def _run_size(rows: int, month: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Generate (or reuse) the month, then retrain on it in a fresh process."""
    result: dict[str, Any] = {"rows": rows, "month": str(month)}
    if month_rows(month) == rows:
        result["generation"] = {"reused": True, "file_mb": round(month.stat().st_size / 1e6, 1)}
        _say(f"{rows:>11,} rows: reusing {month}")
    else:
        _say(f"{rows:>11,} rows: generating {month} ...")
        generation, error = _step(["--generate", str(rows), "--parquet", str(month)], env, work)
        if generation is None:
            return {**result, "failed": f"generation: {error}"}
        result["generation"] = generation
        _say(
            f"{'':>18}generated in {generation['seconds']:.1f} s, peak "
            f"{generation['peak_rss_mb']:,} MB, {generation['file_mb']:,} MB file"
        )
    child_env = {**env, "CHURN_RETRAIN_HOME": str(work / f"state-{rows}")}
    # Past the default snapshot limit (512 MiB of files) a large operator raises it the same
    # way (README: Large months); an explicit setting wins.
    child_env.setdefault(
        "CHURN_RETRAIN_MAX_SNAPSHOT_BYTES", str(max(4 * 1024**3, 2 * month.stat().st_size))
    )
    # Last month's champion first (not timed): the month is gated for drift against its
    # training data, its customers are kept out of the holdout, and it is compared with.
    champion, error = _step(
        ["--child", "--parquet", str(work / CHAMPION_MONTH), "--period", CHAMPION_PERIOD],
        child_env,
        work,
    )
    if champion is None:
        return {**result, "failed": f"champion: {error}"}
    _say(f"{'':>18}retraining (load average {os.getloadavg()[0]:.1f}) ...")
    result["load_average_before"] = round(os.getloadavg()[0], 2)
    retrain, error = _step(["--child", "--parquet", str(month)], child_env, work)
    if retrain is None:
        return {**result, "failed": f"retrain: {error}"}
    _say(f"{'':>18}{retrain['wall_seconds']:.1f} s, peak {retrain['peak_rss_mb']:,} MB")
    return {**result, **retrain}


def _score(rows: int, month: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Score the month from Parquet, validated per batch, as bench_score_parquet.py does."""
    from bench_score_parquet import run_scoring

    from tasks.scoring.sizes import DEFAULT_BATCH_ROWS, DEFAULT_CHUNK_ROWS

    champion, output = work / "champion.pkl", work / "scores.parquet"
    _say(f"scoring {rows:,} rows from {month} (validated per batch) ...")
    trained, error = _step(["--champion", str(champion)], env, work)
    if trained is None:
        return {"rows": rows, "failed": f"champion: {error}"}
    try:
        figures = run_scoring(
            month, champion, output, batch_rows=DEFAULT_BATCH_ROWS,
            chunk_rows=DEFAULT_CHUNK_ROWS, validate=True, env=env, cwd=work,
        )  # fmt: skip
    except SystemExit as failure:
        return {"rows": rows, "failed": str(failure)}
    finally:
        output.unlink(missing_ok=True)
    return {**figures, "batch_rows": DEFAULT_BATCH_ROWS, "chunk_rows": DEFAULT_CHUNK_ROWS}


def _verdict(
    goals: dict[int, tuple[int, int]], rows: int, seconds: float, mb: int, *, under: bool = False
) -> str:
    """The goal for `rows` and whether it was met; "" when there is none for that size."""
    if rows not in goals:
        return ""
    most_seconds, most_mb = goals[rows]
    too_big = mb >= most_mb if under else mb > most_mb
    missed = [
        *([f"time {seconds / most_seconds:.0%} of goal"] if seconds > most_seconds else []),
        *([f"memory {mb / most_mb:.0%} of goal"] if too_big else []),
    ]
    verdict = "met" if not missed else "MISSED: " + ", ".join(missed)
    limit = f"{'<' if under else '<='} {most_mb / GB:g} GB"
    return f"goal <= {most_seconds / 60:g} min, {limit}: {verdict}"


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Exponents of time and memory against rows over the sizes that completed."""
    done = [r for r in runs if "failed" not in r]
    stages = list(dict.fromkeys(s for r in done for s in r["stage_seconds"]))

    def fit(points: list[tuple[int, float]]) -> float | None:
        return round(_exponent(points), 3) if len({r for r, _ in points}) > 1 else None

    return {
        "exponent_wall": fit([(r["rows"], r["wall_seconds"]) for r in done]),
        "exponent_wall_from_1m": fit(
            [(r["rows"], r["wall_seconds"]) for r in done if r["rows"] >= 1_000_000]
        ),
        "exponent_peak_rss": fit([(r["rows"], r["peak_rss_mb"]) for r in done]),
        "exponent_by_stage": {
            s: fit([(r["rows"], r["stage_seconds"][s]) for r in done])
            for s in stages  # a stage of a few milliseconds has no meaningful slope
            if len(done) > 1 and all(r["stage_seconds"].get(s, 0) >= 0.1 for r in done)
        },
    }


def _print_table(runs: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    done = [r for r in runs if "failed" not in r]
    stages = list(dict.fromkeys(s for r in done for s in r["stage_seconds"]))
    widths = [max(len(s), 6) for s in stages]
    print(
        f"{'rows':>11} {'wall s':>8} "
        + " ".join(f"{s:>{w}}" for s, w in zip(stages, widths, strict=True))
        + f" {'other':>6} {'peak MB':>8} {'trained':>8} {'held out':>9} {'model':>6} {'AUC':>7}"
    )
    for r in runs:
        if "failed" in r:
            print(f"{r['rows']:>11,} FAILED ({r['failed'].strip().splitlines()[-1][:120]})")
            continue
        st = r["stage_seconds"]
        other = r["wall_seconds"] - sum(st.values())
        cells = " ".join(
            f"{st[s]:>{w}.1f}" if s in st else f"{'-':>{w}}"
            for s, w in zip(stages, widths, strict=True)
        )
        print(
            f"{r['rows']:>11,} {r['wall_seconds']:>8.1f} {cells} {other:>6.1f} "
            f"{r['peak_rss_mb']:>8,} {r['training_rows'] or 0:>8,} {r['holdout_rows'] or 0:>9,} "
            f"{r['algorithm']:>6} {r['holdout_roc_auc']:>7.4f}"
        )
        verdict = _verdict(RETRAIN_GOALS, r["rows"], r["wall_seconds"], r["peak_rss_mb"])
        for line in [*([verdict] if verdict else []), *r["notes"]]:
            print(f"{'':>12}{line}")
    if done:
        largest = done[-1]
        wall, stage_seconds = largest["wall_seconds"], largest["stage_seconds"]
        shares = ", ".join(
            f"{s} {v / wall:.0%}"
            for s, v in [*stage_seconds.items(), ("other", wall - sum(stage_seconds.values()))]
        )
        print(f"where the time goes at {largest['rows']:,} rows: {shares}")
    by_stage = ", ".join(f"{s} {b}" for s, b in summary["exponent_by_stage"].items())
    print(
        f"time ~ rows^b: b = {summary['exponent_wall'] or '-'} (whole flow, all sizes), "
        f"{summary['exponent_wall_from_1m'] or '-'} (from 1M); peak RSS ~ rows^"
        f"{summary['exponent_peak_rss'] or '-'}; by stage: {by_stage or '-'}"
    )


def _print_scoring(scoring: dict[str, Any]) -> None:
    if "failed" in scoring:
        print(f"scoring {scoring['rows']:,} rows FAILED: {scoring['failed'][-500:]}")
        return
    rows, seconds, mb = scoring["rows"], scoring["seconds"], scoring["peak_rss_mb"]
    print(
        f"scoring {rows:,} rows from Parquet, validated per batch: {seconds:.1f} s "
        f"({rows / seconds:,.0f} rows/s), peak {mb:,} MB, CPU {scoring['cpu_seconds']:.1f} s "
        f"(load {scoring['load_average_before']:.1f} before)"
    )
    verdict = _verdict(SCORING_GOALS, rows, seconds, mb, under=True)
    if verdict:
        print(f"{'':>12}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    parser.add_argument(
        "--months-dir", type=Path, help="keep the generated months here and reuse them "
        "(a file with the right row count is not generated again); default: a temporary folder",
    )  # fmt: skip
    parser.add_argument("--no-scoring", action="store_true", help="skip scoring the largest month")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--champion", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--period", default=PERIOD, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(args.generate, args.parquet)
        return
    if args.child:
        _child(args.parquet, args.period)
        return
    if args.champion:
        _champion(args.champion)
        return
    sizes = sorted(set(args.rows))
    if args.months_dir is not None:
        args.months_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        summary = _benchmark(args, sizes, Path(tmp))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"figures written to {args.json}")
    if any("failed" in r for r in [*summary["runs"], summary["scoring"] or {}]):
        sys.exit(1)


def _benchmark(args: argparse.Namespace, sizes: list[int], work: Path) -> dict[str, Any]:
    from tasks.runtime.prefect_server import PrefectServer

    months = args.months_dir or work
    os.environ["PREFECT_HOME"] = str(work / "prefect")
    os.environ.pop("PREFECT_API_URL", None)
    # One Prefect server for all sizes, up before the clock starts: its boot is not the
    # retrain's cost (benchmarks/bench_overhead.py reports it).
    server = PrefectServer()
    runs: list[dict[str, Any]] = []
    try:
        env = {**os.environ, "PREFECT_API_URL": server.start()}  # the children's API
        server.wait()
        _step(
            ["--generate", str(CHAMPION_ROWS), "--parquet", str(work / CHAMPION_MONTH)], env, work
        )
        for rows in sizes:
            runs.append(_run_size(rows, month_path(months, rows), work, env))
            if "failed" in runs[-1]:
                break  # a larger size would fail too, or take long to say so
            if args.months_dir is None and rows != sizes[-1]:
                month_path(months, rows).unlink(missing_ok=True)
    finally:
        server.stop()
    summary = _summarise(runs)
    _print_table(runs, summary)
    scoring = None
    largest = month_path(months, sizes[-1])
    if not args.no_scoring and month_rows(largest) == sizes[-1]:
        scoring = _score(sizes[-1], largest, work, dict(os.environ))
        _print_scoring(scoring)
    return {
        **summary,
        "runs": runs,
        "scoring": scoring,
        "cores": os.cpu_count(),
        "goals": {
            "retrain": {
                f"{r:,}": {"seconds": s, "peak_rss_mb": m} for r, (s, m) in RETRAIN_GOALS.items()
            },
            "scoring": {
                f"{r:,}": {"seconds": s, "peak_rss_mb": m} for r, (s, m) in SCORING_GOALS.items()
            },
        },
    }


if __name__ == "__main__":
    main()
