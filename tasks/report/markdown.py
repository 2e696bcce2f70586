"""The decision record as the report a person reads: markdown for the Prefect artifact and the
run's `comparison/report.md` (verdict, both models' numbers with intervals, campaign, guardrails,
segments, rule, data and links)."""

from __future__ import annotations

from tasks.decision.record import DecisionRecord, format_score
from tasks.decision.rule import FITNESS_METRIC, LOWER_IS_BETTER, METRICS
from tasks.report.summary import campaign_text


def record_markdown(record: DecisionRecord) -> str:
    """The human report (Prefect artifact, comparison report): verdict, numbers, why."""
    metric = record.rule.metric
    columns = [metric, *([FITNESS_METRIC] if metric != FITNESS_METRIC else []), "brier"]
    lines = [
        f"## Retrain {record.period}: **{record.verdict}**",
        "",
        record.reason,
        "",
        *(
            [
                f"Champion health: **{record.champion_health.state}**: "
                f"{record.champion_health.text()}",
                "",
            ]
            if record.champion_health
            else []
        ),
        "| | version | algorithm | "
        + " | ".join(f"holdout {c}" for c in columns)
        + " | CV roc_auc |",
        "|---|---|---|" + "---|" * (len(columns) + 1),
    ]
    for label, side in (("challenger", record.challenger), ("champion", record.champion)):
        if side is None:
            lines.append(f"| {label} | none |" + " |" * (len(columns) + 2))
            continue
        lines.append(
            f"| {label} | {side.version or ''} | {side.algorithm or ''} | "
            + " | ".join(format_score(side.holdout.get(c), c) for c in columns)
            + f" | {format_score(side.cv.get(FITNESS_METRIC))} |"
        )
    lines += ["", *metrics_table(record)]
    if (campaign := campaign_text(record)) is not None:
        lines += ["", f"Campaign: {campaign}."]
    if record.decision.guardrails:
        lines += [
            "",
            "| guardrail | challenger | champion | worsening | allowed | verdict |",
            "|---|---|---|---|---|---|",
            *(
                f"| {g.metric} | {g.challenger:.4f} | {g.champion:.4f} | {g.worsening:+.4f} "
                f"| {g.max_worsening:.4f} | {'pass' if g.passed else '**fail**'} |"
                for g in record.decision.guardrails
            ),
        ]
    lines += segments_table(record)
    lines += ["", f"Rule: {record.rule.describe()}."]
    if record.holdout_split is not None:
        h = record.holdout_split
        lines.append(
            f"Holdout: {h.holdout_rows:,} rows (requested {h.requested_rows:,}); {h.note}."
        )
    if record.training_sample is not None and record.training_sample.sampled:
        lines.append(f"Training rows: {record.training_sample.reason}.")
    if record.champion_problem:
        lines.append(f"Champion problem: {record.champion_problem}.")
    if record.approval is not None:
        lines.append(f"Approval: {record.approval.text()}.")
    if record.promotion is not None:
        lines.append(f"Promotion: {record.promotion.reason}.")
    lines += [
        "",
        f"Data: `{record.data_source}` ({record.rows:,} rows, digest `{record.data_digest}`), "
        f"holdout {record.holdout_rows:,} rows, seed {record.seed}.",
        f"MLflow run [{record.mlflow_run_id}]({record.mlflow_run_url}) on `{record.tracking_uri}`"
        + (
            f"; report artifacts: {', '.join(f'`{a}`' for a in record.report_artifacts)}."
            if record.report_artifacts
            else "."
        ),
    ]
    return "\n".join(lines)


def segments_table(record: DecisionRecord) -> list[str]:
    """Markdown rows: each named segment's size, churn rate, both scores and verdict."""
    if not record.decision.segments:
        return []
    first = record.decision.segments[0]
    lines = [
        "",
        f"Segments ({first.metric}, tolerance {first.tolerance:g}, Holm-adjusted p-values "
        f"at the rule's one-sided {(1 - record.rule.confidence) / 2:.3f}):",
        "",
        "| segment | rows | churn rate | challenger | champion | change [CI] | Holm p | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in record.decision.segments:
        if s.status == "too-small":
            lines.append(
                f"| {s.segment} | {s.rows:,} | {s.churn_rate:.1%} | | | | | too small to judge |"
            )
            continue
        assert s.difference is not None and s.p_adjusted is not None
        verdict = "**worse**" if s.status == "regression" else "pass"
        lines.append(
            f"| {s.segment} | {s.rows:,} | {s.churn_rate:.1%} "
            f"| {format_score(s.challenger, s.metric)} | {format_score(s.champion, s.metric)} "
            f"| {s.difference.text()} | {s.p_adjusted:.3f} | {verdict} |"
        )
    return lines


def metrics_table(record: DecisionRecord) -> list[str]:
    """Markdown rows: each metric for both models with intervals, and the difference."""
    if record.intervals is None:
        return []
    iv = record.intervals
    conf = next(iter(iv.challenger.values())).confidence if iv.challenger else 0.95
    lines = [
        f"| metric | challenger [{conf:.0%} CI] | champion [{conf:.0%} CI] "
        "| challenger - champion [CI] |",
        "|---|---|---|---|",
    ]
    for name in METRICS:
        if name not in iv.challenger:
            continue
        ours = iv.challenger[name]
        theirs = iv.champion.get(name)
        diff = iv.difference.get(name)
        arrow = " (lower is better)" if name in LOWER_IS_BETTER else ""
        lines.append(
            f"| {name}{arrow} | {ours.estimate:.4f} [{ours.lower:.4f}, {ours.upper:.4f}] | "
            + (f"{theirs.estimate:.4f} [{theirs.lower:.4f}, {theirs.upper:.4f}]" if theirs else "")
            + f" | {diff.text() if diff else ''} |"
        )
    return lines
