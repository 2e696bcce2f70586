"""Registry housekeeping: delete versions that were never promoted and are older than N months.

The decision (`decide_prune`) is a pure function of plain data, so every rule is tested with
inline versions. It is conservative: a version is deleted only when its own tags say it was
never promoted (`promoted=false` with a verdict that does not promote) and it is in none of the
places a promotion leaves a trace (the `champion` and `previous-champion` aliases, any other
alias, the promotion history as `from` or `to` of any event).

Age is the version's registration time, not its `period` tag: the registry sets the first, and it
is when the version appeared; the period is the data's month, which a backfill sets in the past
(a version registered today for 2024-01 is not old) and a simulation in the future.

Deleting removes the registry entry only: the MLflow run, its metrics and the logged model stay.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Literal

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict

from tasks.decision.verdict import PROMOTING
from tasks.errors import Conflict, PruneRefused
from tasks.registry.aliases import CHAMPION, PREVIOUS_CHAMPION, is_missing
from tasks.registry.history import HistoryEvent, read_history
from tasks.registry.lock import LOCK_TIMEOUT_SECONDS, promotion_lock
from tasks.registry.versions import PROMOTED_TAG
from tasks.steps import retried_step, step

#: Why a version is kept or deleted, most protective first (the first that applies wins).
Why = Literal[
    "champion", "previous-champion", "alias", "history", "promoted", "unclear", "young",
    "gone", "delete",
]  # fmt: skip
#: Versions per page of `search_model_versions`, and pages read at most (100,000 versions):
#: versions beyond are left for the next prune, which only ever deletes what it has read.
PAGE_SIZE = 500
MAX_PAGES = 200


class VersionFacts(BaseModel):
    """What the decision needs to know about one registered version."""

    model_config = ConfigDict(frozen=True)

    version: str
    registered_at: datetime
    tags: dict[str, str] = {}
    aliases: frozenset[str] = frozenset()


class PruneDecision(BaseModel):
    """One version kept or deleted, and why."""

    model_config = ConfigDict(frozen=True)

    version: str
    registered_at: datetime
    period: str | None
    verdict: str | None
    delete: bool
    why: Why
    reason: str


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (a 31st becomes a shorter
    month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, _days_in(year, month)))


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def history_versions(events: Iterable[HistoryEvent]) -> frozenset[str]:
    """Every version an alias move came from or went to."""
    return frozenset(v for e in events for v in (e.from_version, e.to_version) if v is not None)


def decide_version(
    facts: VersionFacts,
    *,
    aliases: Mapping[str, str],
    history: Collection[str],
    cutoff: datetime,
) -> PruneDecision:
    """Keep or delete one version: `aliases` is the registered model's alias -> version."""
    why, reason = _keep_reason(facts, aliases=aliases, history=history, cutoff=cutoff)
    return PruneDecision(
        version=facts.version,
        registered_at=facts.registered_at,
        period=facts.tags.get("period"),
        verdict=facts.tags.get("verdict"),
        delete=why == "delete",
        why=why,
        reason=reason,
    )


def _keep_reason(
    facts: VersionFacts, *, aliases: Mapping[str, str], history: Collection[str], cutoff: datetime
) -> tuple[Why, str]:
    version, tags = facts.version, facts.tags
    own = facts.aliases | {alias for alias, v in aliases.items() if v == version}
    verdict = tags.get("verdict")
    if CHAMPION in own:
        return "champion", "the champion"
    if PREVIOUS_CHAMPION in own:
        return "previous-champion", "the previous champion (rollback target)"
    if own:
        return "alias", "has the alias " + ", ".join(f"@{a}" for a in sorted(own))
    if version in history:
        return "history", "in the promotion history (was champion, or was replaced by one)"
    if tags.get(PROMOTED_TAG) == "true":
        return "promoted", "tagged promoted=true"
    if tags.get(PROMOTED_TAG) != "false":
        return "unclear", f"no {PROMOTED_TAG}=false tag: not known to be unpromoted"
    if verdict is None:
        return "unclear", "no verdict tag: not known to be unpromoted"
    if verdict in PROMOTING:
        return (
            "unclear",
            f"verdict {verdict} with promoted=false: a promotion may not have finished",
        )
    if facts.registered_at >= cutoff:
        return "young", f"registered {_day(facts.registered_at)}, not before {_day(cutoff)}"
    return "delete", (
        f"never promoted (verdict {verdict}), registered {_day(facts.registered_at)}, "
        f"before {_day(cutoff)}"
    )


def decide_prune(
    versions: Iterable[VersionFacts],
    *,
    aliases: Mapping[str, str],
    history: Collection[str],
    now: datetime,
    older_than_months: int,
) -> list[PruneDecision]:
    """Every version's decision, by version number."""
    cutoff = months_before(now, older_than_months)
    decided = [decide_version(v, aliases=aliases, history=history, cutoff=cutoff) for v in versions]
    return sorted(decided, key=lambda d: int(d.version) if d.version.isdigit() else 0)


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


class PruneResult(BaseModel):
    """What a prune deleted (or, in a dry run, would delete), and how many it kept and why."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    older_than_months: int
    now: datetime
    cutoff: datetime
    dry_run: bool
    listed: int
    deleted: list[PruneDecision]
    kept: dict[str, int]
    #: The champion when the plan was made: the deletes are refused if another one is now.
    champion: str | None = None

    def headline(self) -> str:
        what = "would delete" if self.dry_run else "deleted"
        return (
            f"{self.model_name}: {what} {len(self.deleted)} of {self.listed} version(s) never "
            f"promoted and registered before {_day(self.cutoff)} ({self.older_than_months} "
            f"month(s)){' (dry run)' if self.dry_run else ''}; kept {self.kept_text()}"
        )

    def kept_text(self) -> str:
        total = sum(self.kept.values())
        parts = ", ".join(f"{why} {n}" for why, n in self.kept.items())
        return f"{total}" + (f" ({parts})" if parts else "")

    def describe(self) -> str:
        """The headline and a table of the deleted versions."""
        lines = [self.headline()]
        if self.deleted:
            lines.append(f"  {'version':>7}  {'registered':<10}  {'period':<7}  reason")
            lines += [
                f"  {'v' + d.version:>7}  {_day(d.registered_at):<10}  {d.period or '-':<7}  "
                f"{d.reason}"
                for d in self.deleted
            ]
        return "\n".join(lines)

    def markdown(self) -> str:
        title = "Dry run of the prune" if self.dry_run else "Prune"
        out = [f"## {title} of `{self.model_name}`", "", self.headline(), ""]
        if self.deleted:
            out += ["| version | registered | period | verdict | reason |", "|---|---|---|---|---|"]
            out += [
                f"| v{d.version} | {_day(d.registered_at)} | {d.period or '-'} | "
                f"{d.verdict or '-'} | {d.reason} |"
                for d in self.deleted
            ]
        return "\n".join(out)


def _summarize(
    name: str,
    decisions: list[PruneDecision],
    *,
    now: datetime,
    older_than_months: int,
    dry_run: bool,
) -> PruneResult:
    kept: dict[str, int] = {}
    for d in decisions:
        if not d.delete:
            kept[d.why] = kept.get(d.why, 0) + 1
    return PruneResult(
        model_name=name,
        older_than_months=older_than_months,
        now=now,
        cutoff=months_before(now, older_than_months),
        dry_run=dry_run,
        listed=len(decisions),
        deleted=[d for d in decisions if d.delete],
        kept=kept,
    )


def _facts(mv: ModelVersion) -> VersionFacts:
    return VersionFacts(
        version=str(mv.version),
        registered_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
        tags=dict(mv.tags or {}),
        aliases=frozenset(getattr(mv, "aliases", None) or ()),
    )


def _registered_versions(client: MlflowClient, name: str) -> list[VersionFacts]:
    """Every version of `name`, by pages (ordered by number, so pages do not shift)."""
    found: dict[str, VersionFacts] = {}
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = client.search_model_versions(
            f"name='{name}'",
            max_results=PAGE_SIZE,
            order_by=["version_number ASC"],
            page_token=token,
        )
        found.update((str(mv.version), _facts(mv)) for mv in page)
        if not page.token or page.token == token:
            break
        token = page.token
    return list(found.values())


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    try:
        return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        if is_missing(exc):
            return {}
        raise


@retried_step("plan-prune")  # reads only
def plan_prune(name: str, *, older_than_months: int, now: datetime | None = None) -> PruneResult:
    """What a prune would delete now: a dry run's result."""
    client = MlflowClient()
    now = now or datetime.now(UTC)
    aliases = _aliases(client, name)
    decisions = decide_prune(
        _registered_versions(client, name),
        aliases=aliases,
        history=history_versions(read_history(client, name)),
        now=now,
        older_than_months=older_than_months,
    )
    plan = _summarize(name, decisions, now=now, older_than_months=older_than_months, dry_run=True)
    return plan.model_copy(update={"champion": aliases.get(CHAMPION)})


# Not retried: each delete is re-decided from a fresh read, but a repeat would report "gone".
@step("delete-unpromoted-versions")
def delete_unpromoted_versions(
    plan: PruneResult, *, lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS
) -> PruneResult:
    """Delete the versions `plan` chose, under the promotion lock, each re-decided right before
    its delete from the registry as it is then (an alias set meanwhile keeps it)."""
    client, name = MlflowClient(), plan.model_name
    decisions: list[PruneDecision] = []
    try:
        with promotion_lock(name, timeout_seconds=lock_timeout_seconds):
            if (current := _aliases(client, name).get(CHAMPION)) != plan.champion:
                raise Conflict(
                    f"the champion of {name!r} is {_v(current)} now, not {_v(plan.champion)} as when "
                    "this prune was planned (a promotion or rollback came between): nothing was "
                    "deleted; run the prune again"
                )
            for planned in plan.deleted:
                decision = _decide_again(client, name, planned, cutoff=plan.cutoff)
                if decision.delete:
                    client.delete_model_version(name, decision.version)
                decisions.append(decision)
    except TimeoutError:
        raise PruneRefused(
            f"the promotion lock of {name!r} stayed busy for {lock_timeout_seconds:.0f} s; "
            "a promotion is under way, try again"
        ) from None
    done = _summarize(
        name,
        decisions,
        now=plan.now,
        older_than_months=plan.older_than_months,
        dry_run=False,
    )
    kept = dict(plan.kept)
    for why, n in done.kept.items():
        kept[why] = kept.get(why, 0) + n
    return done.model_copy(update={"listed": plan.listed, "kept": kept, "champion": plan.champion})


def _v(version: str | None) -> str:
    return "none" if version is None else f"v{version}"


def _decide_again(
    client: MlflowClient, name: str, planned: PruneDecision, *, cutoff: datetime
) -> PruneDecision:
    """The decision on `planned` from the registry as it is now."""
    try:
        facts = _facts(client.get_model_version(name, planned.version))
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        return planned.model_copy(
            update={"delete": False, "why": "gone", "reason": "deleted by someone else meanwhile"}
        )
    history = history_versions(read_history(client, name))
    return decide_version(facts, aliases=_aliases(client, name), history=history, cutoff=cutoff)
