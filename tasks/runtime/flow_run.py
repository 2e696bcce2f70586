"""The Prefect flow run this process runs in: its name, id and link in the UI."""

from __future__ import annotations


def flow_run_url(flow_run_id: str | None = None) -> str | None:
    """A UI link when a real Prefect server is configured (a temporary one is gone by then)."""
    from prefect import runtime
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    flow_run_id = flow_run_id or str(runtime.flow_run.id)
    if not PREFECT_API_URL.value():
        return None
    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None
