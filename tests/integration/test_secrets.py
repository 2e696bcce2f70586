"""No secret leaves its setting: sentinel values in every secret, then search everything a run leaves.

The runs go through a real MLflow server with basic auth serving its API under
`/acme/churn.mlflow`, as DagsHub does, so the DagsHub settings path runs for real (with
`CHURN_RETRAIN_DAGSHUB_HOST` pointing at it). Each sentinel is the password of a real user there:
a run that gets through proves its sentinel was used.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.errors import SnapshotRejected, TrackingUnavailable
from tests.tracking_server import TrackingServer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": 1500}
PREFIX = "/acme/churn.mlflow"  # DagsHub's shape: https://dagshub.com/OWNER/REPO.mlflow

SENTINELS = {
    "tracking password": "SENTINEL-PASSWORD-7f3a9c",
    "DagsHub token": "SENTINEL-DAGSHUB-TOKEN-7f3a9c",
    "DagsHub token in a Prefect Secret block": "SENTINEL-BLOCK-TOKEN-7f3a9c",
    "wrong tracking password": "SENTINEL-WRONG-PASSWORD-7f3a9c",
    "alert URL token": "SENTINEL-ALERT-TOKEN-7f3a9c",
}
USERS = {  # user on the server -> the sentinel that is its password
    "churn-bot": "tracking password",
    "acme": "DagsHub token",
    "block-bot": "DagsHub token in a Prefect Secret block",
}
#: Basic auth headers a run sends (user, secret), searched for in their base64 form too.
HEADERS = [*USERS.items(), ("churn-bot", "wrong tracking password")]


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def alert_receiver() -> Iterator[tuple[str, list[bytes]]]:
    handler = type("Receiver", (_Receiver,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.bodies
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def dagshub_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    # Every user a collaborator on the repository, as on DagsHub.
    srv = TrackingServer(
        tmp_path_factory.mktemp("dagshub-like"), prefix=PREFIX, default_permission="EDIT"
    )
    srv.start()
    for user, secret in USERS.items():
        srv.create_user(user, SENTINELS[secret])
    yield srv
    srv.kill()


def _needles() -> dict[str, bytes]:
    """Each sentinel as text, and as the Basic auth header that carries it."""
    needles = {name: value.encode() for name, value in SENTINELS.items()}
    for user, secret in HEADERS:
        header = base64.b64encode(f"{user}:{SENTINELS[secret]}".encode())
        needles[f"{secret} (as a Basic auth header)"] = header
    return needles


def _forget_connection() -> None:
    """Drop the credentials the previous run put into this process's environment for MLflow.

    Popped directly (not through monkeypatch, which would put them back at teardown); the
    `state_home` fixture restores the environment as it was before the test.
    """
    import os

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(name, None)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _prefect_records(flow_run_ids: list[UUID]) -> dict[str, bytes]:
    """Flow runs, task runs, logs and artifacts of these runs, as the Prefect API returns them."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    from tasks.logs import flush_api_logs

    flush_api_logs()  # logs are shipped in batches
    runs = FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
    found: dict[str, bytes] = {}
    with get_client(sync_client=True) as client:
        for run_id in flow_run_ids:
            found[f"prefect flow run {run_id}"] = (
                client.read_flow_run(run_id).model_dump_json().encode()
            )
        tasks = client.read_task_runs(flow_run_filter=runs)
        found["prefect task runs"] = json.dumps([t.model_dump(mode="json") for t in tasks]).encode()
        logs: list[str] = []
        while batch := client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)),
            limit=200,
            offset=len(logs),
        ):
            logs += [log.message for log in batch]
        found["prefect logs"] = "\n".join(logs).encode()
        artifacts = client.read_artifacts(flow_run_filter=runs)
        found["prefect artifacts"] = json.dumps(
            [a.model_dump(mode="json") for a in artifacts]
        ).encode()
    return found


def test_no_secret_leaves_a_trace(
    dagshub_like: TrackingServer,
    state_home: Path,
    tmp_path: Path,
    alert_receiver: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prefect.blocks.system import Secret

    server = dagshub_like
    receiver_url, alerts = alert_receiver
    monkeypatch.setenv(
        "CHURN_RETRAIN_ALERT_URL", f"{receiver_url}/hooks/{SENTINELS['alert URL token']}"
    )
    flow_runs: list[UUID] = []

    # A: any MLflow server, credentials written into the tracking URI; a full retrain.
    password = SENTINELS["tracking password"]
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", f"http://churn-bot:{password}@127.0.0.1:{server.port}{PREFIX}"
    )
    monkeypatch.setenv("DAGSHUB_USER_TOKEN", SENTINELS["DagsHub token"])  # set, unused: no owner
    first = retrain(RetrainParameters(period="2026-01", **FAST))
    assert first.verdict == "promote-first" and first.tracking_uri == server.url
    flow_runs.append(UUID(first.flow_run_id))

    # B: DagsHub settings (owner, repo, token) against the DagsHub-shaped server; a full retrain.
    _forget_connection()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_HOST", server.base)
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_OWNER", "acme")
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_REPO", "churn")
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_TOKEN", SENTINELS["DagsHub token"])
    second = retrain(RetrainParameters(period="2026-02", **FAST))
    assert second.tracking_uri == server.url and second.champion is not None
    flow_runs.append(UUID(second.flow_run_id))
    assert server.champion("telco-churn") is not None

    # C: the token from a Prefect Secret block; the snapshot is rejected, which alerts.
    Secret(value=SENTINELS["DagsHub token in a Prefect Secret block"]).save(
        "churn-dagshub-token", overwrite=True
    )
    _forget_connection()
    monkeypatch.delenv("CHURN_RETRAIN_DAGSHUB_TOKEN")
    monkeypatch.delenv("DAGSHUB_USER_TOKEN")
    monkeypatch.setenv("CHURN_RETRAIN_DAGSHUB_TOKEN_BLOCK", "churn-dagshub-token")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "block-bot")
    bad = generate_snapshot("2026-03", rows=1500).drop(columns=["Contract"])
    bad.to_csv(tmp_path / "2026-03.csv", index=False)
    state = retrain(
        RetrainParameters(period="2026-03", **{**FAST, "data": str(tmp_path / "2026-03.csv")}),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(SnapshotRejected, match="Contract"):
        state.result()
    flow_runs.append(state.state_details.flow_run_id)

    # D: a wrong password (itself a secret) is refused before anything else happens.
    _forget_connection()
    for name in ("CHURN_RETRAIN_DAGSHUB_TOKEN_BLOCK", "CHURN_RETRAIN_DAGSHUB_OWNER"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("CHURN_RETRAIN_DAGSHUB_REPO")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "churn-bot")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SENTINELS["wrong tracking password"])
    state = retrain(RetrainParameters(period="2026-04", **FAST), return_state=True)
    assert state.is_failed()
    with pytest.raises(TrackingUnavailable, match="refused the credentials"):
        state.result()
    flow_runs.append(state.state_details.flow_run_id)

    # Everything the runs left behind.
    captured = capfd.readouterr()
    places = {
        "stdout": captured.out.encode(),
        "stderr": captured.err.encode(),
        "python logs": caplog.text.encode(),
        **_prefect_records(flow_runs),
        **_files(server.root),  # MLflow's database, the artifact store, the user database
        **_files(state_home),  # local state (reports and anything else a run writes)
        **{f"alert body {i}": body for i, body in enumerate(alerts)},
    }
    assert alerts, "the failed runs must have sent alerts"

    # The search reaches real content: names we did log are found where they should be.
    logs = places["prefect logs"]
    assert b"answers as block-bot" in logs  # C passed the check with the block's token
    assert b"answers as acme" in logs and b"answers as churn-bot" in logs
    assert any(
        b"telco-churn" in data for name, data in places.items() if name.endswith("mlflow.db")
    )
    assert any(name.endswith("decision.json") for name in places)

    leaks = [
        f"{what} in {where}"
        for where, data in places.items()
        for what, needle in _needles().items()
        if needle in data
    ]
    assert leaks == []
