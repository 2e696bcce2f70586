"""A registered version's model card: its decision in a few lines of markdown (month, data, rule,
scores with intervals, verdict, approval, what it replaced), and the line a rollback adds.

Pure text from the decision record and the history event; `tasks/registry/card.py` writes it as
the version's description in MLflow."""

from __future__ import annotations

from tasks.decision.intervals import Interval
from tasks.decision.record import DecisionRecord, format_score
from tasks.decision.rule import FITNESS_METRIC
from tasks.registry.history import HistoryEvent
from tasks.settings import redact_uri

#: The heading every card starts with, so a rollback line can tell a card from a hand-written note.
CARD_TITLE = "### Model card"


def model_card(record: DecisionRecord) -> str:
    """The card of the challenger `record` decided on (its settled decision: the move as it will
    be, or was, made)."""
    decision, rule = record.decision, record.rule
    version = record.challenger.version or "?"
    lines = [
        f"{CARD_TITLE}: {record.model_name} v{version}, {record.period}: **{record.verdict}**",
        "",
        f"- **Month** {record.period} (run [{record.mlflow_run_id}]({record.mlflow_run_url}), "
        f"decided {record.decided_at})",
        f"- **Data** `{redact_uri(record.data_source)}`: {record.rows:,} rows, "
        f"`{record.data_digest}`; trained on {record.train_rows:,}, compared on "
        f"{record.holdout_rows:,} holdout rows",
        f"- **Rule** {rule.describe()}",
        *_score_lines(record),
        f"- **Verdict** {decision.verdict}: {decision.reason}",
    ]
    if record.approval is not None:
        lines.append(f"- **Approval** {record.approval.text()}")
    lines.append(f"- **Champion** {_champion_line(record)}")
    return "\n".join(lines)


def _score_lines(record: DecisionRecord) -> list[str]:
    """The rule's metric (and roc_auc, the floor's) for both models, with intervals."""
    decision, intervals = record.decision, record.intervals
    metrics = list(dict.fromkeys([decision.metric, FITNESS_METRIC]))
    lines = []
    for metric in metrics:
        ours = _scored(
            record.challenger.holdout.get(metric),
            intervals.challenger.get(metric) if intervals else None,
            metric,
        )
        text = f"- **Scores** holdout {metric}: challenger {ours}"
        if record.champion is not None:
            theirs = _scored(
                record.champion.holdout.get(metric),
                intervals.champion.get(metric) if intervals else None,
                metric,
            )
            text += f"; champion v{record.champion.version} {theirs}"
            change = decision.interval if metric == decision.metric else None
            if change is None and intervals is not None:
                change = intervals.difference.get(metric)
            if change is not None:
                text += f"; difference {change.text()} ({change.confidence:.0%} {change.method})"
        lines.append(text)
    return lines


def _scored(value: float | None, interval: Interval | None, metric: str) -> str:
    if value is None:
        return "not scored"
    if interval is None:
        return format_score(value, metric)
    low, high = format_score(interval.lower, metric), format_score(interval.upper, metric)
    return f"{format_score(value, metric)} [{low}, {high}]"


def _champion_line(record: DecisionRecord) -> str:
    """Who is champion after this decision, and what this version replaced."""
    version = record.challenger.version
    before = record.champion.version if record.champion else None
    if record.promoted:
        replaced = f"replaced v{before}" if before else "the first champion"
        event = record.promotion.event if record.promotion else None
        moved = f" (moved by {event.by} at {event.at}, history #{event.seq})" if event else ""
        return f"v{version} is champion: {replaced}{moved}"
    after = record.champion_version_after
    stays = f"v{after} stays champion" if after else "no champion"
    return f"not promoted; {stays}"


def rollback_line(event: HistoryEvent) -> str:
    """What a rollback to `event.to_version` adds to that version's card."""
    before = f"v{event.from_version}" if event.from_version else "no champion"
    return (
        f"- **Restored** as champion by rollback from {before}, by {event.by} at {event.at} "
        f"(history #{event.seq}): {event.reason or 'rollback'}"
    )


def with_line(card: str | None, line: str) -> str:
    """`card` with `line` appended (a card of its own when the version had none)."""
    return f"{card.rstrip()}\n{line}" if card and card.strip() else line
