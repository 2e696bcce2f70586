"""What a person reads after a run: the summary the CLI prints and the flow run's log ends with,
the tables of the Prefect artifacts, and the campaign line of both."""

from __future__ import annotations

from tasks.decision.record import DecisionRecord, ModelScores, format_score
from tasks.decision.rule import CAPACITY_METRICS, FITNESS_METRIC
from tasks.settings import Settings, is_serverless_uri, redact_uri, ui_command


def _score(record: DecisionRecord, side: ModelScores) -> str:
    """`metric value` on the holdout, with roc_auc beside a metric that is not roc_auc."""
    metric, nan = record.rule.metric, float("nan")
    shown = f"{metric} {format_score(side.holdout.get(metric, nan), metric)}"
    if metric == "retention_value_at_capacity":
        shown += " per customer"
    if metric != FITNESS_METRIC:
        shown += f", roc_auc {side.holdout.get(FITNESS_METRIC, nan):.4f}"
    return shown


def campaign_text(record: DecisionRecord) -> str | None:
    """The list the campaign calls on the holdout and what it is worth on the whole month."""
    rule, ch = record.rule, record.challenger.holdout
    if not CAPACITY_METRICS & set(record.rule.metrics) or "recall_at_capacity" not in ch:
        return None
    campaign = rule.campaign
    share = campaign.share(record.rows)
    parts = [f"calls {share:.1%} of customers ({campaign.describe()})"]
    for label, side in (("challenger", record.challenger), ("champion", record.champion)):
        if side is None or "recall_at_capacity" not in side.holdout:
            continue
        h = side.holdout
        value = h.get("retention_value_at_capacity")
        month = "" if value is None else f", value {value * record.rows:,.0f} on the month"
        parts.append(
            f"{label} finds {h['recall_at_capacity']:.1%} of churners (lift "
            f"{h['lift_at_capacity']:.2f}{month})"
        )
    return "; ".join(parts)


def summary(record: DecisionRecord) -> str:
    """What a person needs after a run: the verdict, both scores, where to look (the CLI
    prints it; the flow run logs it last)."""
    ch = record.challenger
    nan = float("nan")
    lines = [
        f"churn-retrain {record.period}: {record.verdict.upper()}",
        f"  data         {record.data_source} ({record.rows:,} rows, {record.data_digest})",
        f"  validation   {record.validation}",
        *([f"  drift        {record.drift.splitlines()[0]}"] if record.drift else []),
        f"  challenger   v{ch.version} {ch.algorithm}: holdout {_score(record, ch)} "
        f"(CV roc_auc {ch.cv.get(FITNESS_METRIC, nan):.4f}, {record.holdout_rows:,} holdout rows)",
    ]
    if record.champion is None:
        lines.append(
            f"  champion     none before this run ({record.champion_problem})"
            if record.champion_problem
            else "  champion     none before this run"
        )
    else:
        lines.append(
            f"  champion     v{record.champion.version}: holdout {_score(record, record.champion)} "
            "on the same rows"
        )
    if (campaign := campaign_text(record)) is not None:
        lines.append(f"  campaign     {campaign}")
    if record.decision.segments:
        judged = [s for s in record.decision.segments if s.status != "too-small"]
        worse = [s for s in judged if s.status == "regression"]
        small = len(record.decision.segments) - len(judged)
        lines.append(
            f"  segments     {len(judged)} judged, {len(worse)} worse"
            + (f", {small} too small to judge" if small else "")
            + (f": {'; '.join(s.text() for s in worse)}" if worse else "")
        )
    if record.holdout_split is not None and record.holdout_split.unseen_rows is not None:
        lines.append(
            f"  holdout      {record.holdout_split.holdout_rows:,} rows the champion never "
            f"trained on ({record.holdout_split.excluded_rows:,} rows excluded)"
        )
    if record.training_sample is not None and record.training_sample.sampled:
        t = record.training_sample
        lines.append(
            f"  training     {t.rows_used:,} of {t.rows_available:,} rows: a stratified "
            f"sample (cap {t.max_rows:,}, seed {t.seed}; --max-train-rows null: all)"
        )
    if record.champion_health is not None:
        lines.append(f"  health       {record.champion_health.text()}")
    if record.approval is not None:
        lines.append(f"  approval     {record.approval.text()}")
    lines += [
        f"  decision     {record.reason}",
        f"  champion now v{record.champion_version_after} (models:/{record.model_name}@champion)"
        if record.champion_version_after
        else "  champion now none",
        f"  took         {sum(record.stage_seconds.values()):.1f} s "
        + " ".join(f"{k}={v:.1f}" for k, v in record.stage_seconds.items()),
        f"  MLflow       run {record.mlflow_run_id} on {record.tracking_uri}",
        f"  look at      {record.mlflow_run_url} ({where_to_look(record.tracking_uri)})",
    ]
    return "\n".join(lines)


def where_to_look(tracking_uri: str, local_store_uri: str | None = None) -> str:
    """What beside the run's link shows where it is: decision.json, and the command that serves
    the MLflow UI on `http://127.0.0.1:5000` for a store without a server.

    `make mlflow-ui` serves the store under the state directory (`local_store_uri`, default:
    this environment's); another store is served by `mlflow ui --backend-store-uri URI`.
    """
    if is_serverless_uri(tracking_uri):
        default = local_store_uri or Settings().local_store_uri
        if redact_uri(default) != tracking_uri:
            return f"decision.json; this store: `{ui_command(tracking_uri)}`"
    return "decision.json; local store: `make mlflow-ui`"


def metrics_rows(record: DecisionRecord) -> list[dict[str, float | str | None]]:
    """One row per holdout metric: challenger, champion and the difference."""
    theirs = record.champion.holdout if record.champion else {}
    return [
        {
            "metric": name,
            "challenger": round(value, 4),
            "champion": None if name not in theirs else round(theirs[name], 4),
            "difference": None if name not in theirs else round(value - theirs[name], 4),
        }
        for name, value in record.challenger.holdout.items()
    ]


def segment_rows(record: DecisionRecord) -> list[dict[str, float | str | None]]:
    """One row per named segment: size, churn rate, both scores, the change, the verdict."""
    return [
        {
            "segment": s.segment,
            "rows": s.rows,
            "churn_rate": round(s.churn_rate, 4),
            "challenger": None if s.challenger is None else round(s.challenger, 4),
            "champion": None if s.champion is None else round(s.champion, 4),
            "change": None if s.difference is None else s.difference.text(),
            "holm_p": None if s.p_adjusted is None else round(s.p_adjusted, 4),
            "verdict": s.status,
        }
        for s in record.decision.segments
    ]
