"""What a promotion step did: a value the decision record carries (kept apart from the step
itself, so the record and the model card can be read without importing the move)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tasks.registry.history import HistoryEvent


class Promotion(BaseModel):
    """What the promotion step did."""

    model_config = ConfigDict(frozen=True)

    promoted: bool
    conflict: bool
    champion_before: str | None
    champion_after: str | None
    reason: str
    event: HistoryEvent | None = None
