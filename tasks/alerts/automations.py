"""Prefect automations from automations/*.yaml: alert on failed runs (retrains and scorings),
crash unresponsive ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore


_AUTOMATIONS = Path(__file__).resolve().parents[2] / "automations"
AUTOMATION_FILE = _AUTOMATIONS / "retrain-failed.yaml"
#: Marks a run whose heartbeats stopped Crashed, which AUTOMATION_FILE then alerts on.
UNRESPONSIVE_AUTOMATION_FILE = _AUTOMATIONS / "retrain-unresponsive.yaml"
#: Alerts on a failed `score` run: the base re-scored when the champion moves, unwatched.
SCORE_FAILED_AUTOMATION_FILE = _AUTOMATIONS / "score-failed.yaml"
AUTOMATION_FILES = (AUTOMATION_FILE, UNRESPONSIVE_AUTOMATION_FILE, SCORE_FAILED_AUTOMATION_FILE)
#: The id in the committed YAML, replaced by the chosen block's when the automation is created.
PLACEHOLDER_BLOCK_ID = UUID(int=0)


def automation_definition(
    path: Path = AUTOMATION_FILE,
    *,
    block: str | None = None,
    block_document_id: UUID | None = None,
) -> AutomationCore:
    """The automation in `path` as Prefect's model, its notifications sent through `block`.

    `block` (TYPE/NAME) is looked up on the server in PREFECT_API_URL; `block_document_id`
    skips the lookup. With neither, the placeholder id stays (enough to check the file).
    """
    import yaml
    from prefect.events.schemas.automations import AutomationCore

    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if block is not None:
        block_document_id = _block_document_id(block)
    if block_document_id is not None:
        for action in raw.get("actions", []):
            if action.get("block_document_id") == str(PLACEHOLDER_BLOCK_ID):
                action["block_document_id"] = str(block_document_id)
    return AutomationCore.model_validate(raw)


def install_automation(path: Path = AUTOMATION_FILE, *, block: str) -> UUID:
    """Create the automation on the server, replacing any earlier one of the same name."""
    from prefect.client.orchestration import get_client

    automation = automation_definition(path, block=block)
    with get_client(sync_client=True) as client:
        for earlier in client.read_automations_by_name(automation.name):
            client.delete_automation(earlier.id)
        return client.create_automation(automation)


def _block_document_id(reference: str) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    slug, _, name = reference.partition("/")
    if not slug or not name:
        raise ValueError(
            f"block must be TYPE/NAME (e.g. slack-webhook/churn-alerts), got {reference!r}"
        )
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type_slug=slug)
        except ObjectNotFound as exc:
            raise ValueError(f"no saved block {reference!r} on the Prefect server") from exc
    return document.id
