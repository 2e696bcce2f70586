"""Approval before promotion: a person approves or rejects a winning challenger, or time runs out.

With `ApprovalPolicy.required`, a retrain whose verdict would move the champion pauses (Prefect's
`pause_flow_run`, so the Prefect UI shows a typed "Resume" form: approve or reject, a name, a
comment) after the challenger is registered and before the promotion lock is taken: nothing is
held while a person thinks (the pause and the request: `tasks/alerts/approval.py`). The answer
becomes an `ApprovalOutcome`; `apply_approval`, pure, turns it into the run's verdict. An
approved promotion still goes through `promote_challenger`, which re-reads the champion under
the lock: if another run moved it meanwhile, the stale comparison is refused (`conflict`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.decision.verdict import Decision

logger = logging.getLogger(__name__)

#: The pause's key: one approval per run (a retried flow run asks again).
PAUSE_KEY = "approve-promotion"


class ApprovalPolicy(BaseModel):
    """Whether a winning challenger waits for a person, and for how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = Field(
        default=False,
        description="Pause before moving the champion until a person approves or rejects the "
        "challenger in the Prefect UI (the paused run's Resume form). Needs a Prefect server "
        "the reviewer can reach (PREFECT_API_URL).",
    )
    timeout_minutes: float = Field(
        default=24 * 60,
        gt=0,
        le=14 * 24 * 60,
        description="Minutes to wait for the answer; then the champion stays (verdict "
        "approval-timeout).",
    )
    poll_seconds: int = Field(
        default=10, ge=1, le=300, description="How often the paused run checks for the answer."
    )


class ApprovalAnswer(BaseModel):
    """What the reviewer types into the paused run's Resume form."""

    approve: bool = Field(description="Promote the challenger (on) or keep the champion (off).")
    reviewer: str = Field(min_length=1, max_length=100, description="Who decides (your name).")
    comment: str = Field(default="", max_length=1000, description="Why, for the record.")


class ApprovalOutcome(BaseModel):
    """The approval step of one run, for the decision record."""

    model_config = ConfigDict(frozen=True)

    status: Literal["approved", "rejected", "timed-out"]
    reviewer: str | None = None
    comment: str = ""
    asked_at: str
    answered_at: str | None = None
    timeout_minutes: float

    def text(self) -> str:
        if self.status == "timed-out":
            return f"not answered within {self.timeout_minutes:g} min (asked {self.asked_at})"
        said = f": {self.comment}" if self.comment else ""
        return f"{self.status} by {self.reviewer} at {self.answered_at}{said}"


def apply_approval(decision: Decision, outcome: ApprovalOutcome | None) -> Decision:
    """The decision once the reviewer answered: approved or not asked, unchanged; rejected or
    unanswered, the champion stays under a verdict naming why."""
    if outcome is None or outcome.status == "approved" or not decision.promote:
        return decision
    verdict: Literal["rejected-by-reviewer", "approval-timeout"] = (
        "rejected-by-reviewer" if outcome.status == "rejected" else "approval-timeout"
    )
    return decision.model_copy(
        update={
            "verdict": verdict,
            "promote": False,
            "reason": f"promotion {outcome.text()}; champion stays "
            f"(the comparison said: {decision.reason})",
            "superseded": decision.verdict,
        }
    )


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
