"""The production profile (README: Production profile: PostgreSQL), brought up through the
Makefile targets on 127.0.0.1, as a person would: PostgreSQL, the Prefect server and the MLflow
server on it, the deployments, a process worker, the automations. A scheduled-style monthly run
promotes v1, a bad month is rejected with an alert, and the databases hold what happened."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.alert_receivers import AlertReceiver, receiver
from tests.servers import clean_env, free_port, run_cli, start, stop, wait_for, wait_http

ROOT = Path(__file__).resolve().parents[2]
MODEL = "telco-churn"
FAST = {"models": ["lr"], "folds": 2}
ROWS = 1500
BLOCK = "custom-webhook/churn-profile-alerts"


@dataclass
class Profile:
    """The running profile: where its state is, its ports, the environment of its clients."""

    home: Path
    ports: dict[str, int]
    env: dict[str, str]
    alerts: AlertReceiver
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def make_vars(self) -> list[str]:
        return [f"{name}={port}" for name, port in self.ports.items()]

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['MLFLOW_PORT']}"

    def make(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            ["make", *args, *self.make_vars],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"make {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def connect(self, database: str) -> Any:
        import psycopg

        password = (self.home / "postgres" / "password").read_text().strip()
        return psycopg.connect(
            host="127.0.0.1",
            port=self.ports["PG_PORT"],
            user="churn",
            password=password,
            dbname=database,
            connect_timeout=10,
        )


def _timed(profile: Profile, what: str, since: float) -> None:
    profile.timings[what] = round(time.monotonic() - since, 1)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_of(home: Path) -> list[str]:
    """Processes still running with the profile's state dir in their command line or env."""
    marker = str(home).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command[:200]}")
    return found


def _with_api(profile: Profile) -> Any:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: profile.env["PREFECT_API_URL"]})


@pytest.fixture(scope="module")
def profile() -> Iterator[Profile]:
    """Everything up through `make`, torn down in reverse, and checked to be gone."""
    # Not pytest's tmp_path: as root, PostgreSQL runs as the user postgres, who must be able
    # to reach the cluster's directory (pytest's temp root is mode 700).
    home = Path(tempfile.mkdtemp(prefix="churn-profile-"))
    home.chmod(0o755)
    ports = {name: free_port() for name in ("PG_PORT", "PREFECT_PORT", "MLFLOW_PORT")}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    begun = time.monotonic()
    with receiver() as alerts:
        env = clean_env(
            CHURN_RETRAIN_HOME=str(home),
            PREFECT_API_URL=f"http://127.0.0.1:{ports['PREFECT_PORT']}/api",
            PREFECT_WORKER_QUERY_SECONDS="1",
        )
        profile = Profile(home=home, ports=ports, env=env, alerts=alerts)
        try:
            since = time.monotonic()
            profile.make("postgres", timeout=120)
            _timed(profile, "make postgres", since)

            # Both servers start at once; each creates its tables in its database.
            since = time.monotonic()
            health = {
                "prefect-server-pg": f"{env['PREFECT_API_URL']}/health",
                "mlflow-server-pg": f"{profile.tracking_uri}/health",
            }
            for target in health:
                servers[target] = start(
                    ["make", target, *profile.make_vars],
                    env=env,
                    log=home / f"{target}.log",
                    cwd=ROOT,
                )
            for target, url in health.items():
                wait_http(url, timeout=180, process=servers[target], log=home / f"{target}.log")
                _timed(profile, f"{target} healthy", since)

            since = time.monotonic()
            (home / "data").mkdir()
            profile.make("deploy", f"DATA={home / 'data' / '{period}.csv'}", timeout=300)
            _timed(profile, "make deploy", since)

            since = time.monotonic()
            from prefect.blocks.notifications import CustomWebhookNotificationBlock

            with _with_api(profile):
                CustomWebhookNotificationBlock(
                    name="churn-profile",
                    url=alerts.url,
                    json_data={"text": "{{subject}}\n{{body}}"},
                ).save(BLOCK.partition("/")[2], overwrite=True)
            profile.make("automation", f"BLOCK={BLOCK}")
            _timed(profile, "make automation", since)

            # The worker's environment is what the runs see: tracking and alert settings.
            profile.env = {
                **env,
                "CHURN_RETRAIN_TRACKING_URI": profile.tracking_uri,
                "CHURN_RETRAIN_ALERT_URL": alerts.url,
            }
            servers["worker"] = start(
                ["make", "worker", *profile.make_vars],
                env=profile.env,
                log=home / "worker.log",
                cwd=ROOT,
            )
            _timed(profile, "profile up", begun)
            yield profile
        finally:
            since = time.monotonic()
            for name in ("worker", "mlflow-server-pg", "prefect-server-pg"):
                if name in servers:
                    stop(servers[name])
            if (home / "postgres" / "password").exists():
                profile.make("postgres-stop", timeout=90)
            _timed(profile, "teardown", since)
            print("production profile timings (s):", json.dumps(profile.timings))
            left = _processes_of(home)
            ports_open = [name for name, port in ports.items() if _listening(port)]
            pid_file = (home / "postgres" / "data" / "postmaster.pid").exists()
            shutil.rmtree(home, ignore_errors=True)
            assert not left and not ports_open and not pid_file, (left, ports_open, pid_file)


def _run_deployment(
    profile: Profile, name: str, *, when: datetime | None = None, **params: Any
) -> Any:
    from prefect.deployments import run_deployment

    with _with_api(profile):
        return run_deployment(
            name,
            parameters={"params": {**FAST, **params}},
            scheduled_time=when,
            timeout=600,
        )


def _mlflow(profile: Profile) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=profile.tracking_uri, registry_uri=profile.tracking_uri)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_postgresql_profile_promotes_a_month_and_rejects_a_bad_one(profile: Profile) -> None:
    from tasks.data.generate import generate_snapshot

    data = profile.home / "data"
    generate_snapshot("2026-03", seed=11, rows=ROWS).to_csv(data / "2026-03.csv", index=False)
    bad = generate_snapshot("2026-04", seed=12, rows=ROWS).drop(columns=["Contract"])
    bad.to_csv(data / "bad-2026-04.csv", index=False)

    # (a) The monthly deployment as its schedule runs it: the month comes from the scheduled
    # time and the data from the location `make deploy DATA=...` put in the Prefect Variable.
    since = time.monotonic()
    monthly = _run_deployment(
        profile, "retrain/monthly", when=datetime(2026, 3, 1, 2, tzinfo=ZoneInfo("UTC"))
    )
    _timed(profile, "scheduled monthly run", since)
    assert monthly.state.is_completed(), monthly.state
    client = _mlflow(profile)
    experiment = client.get_experiment_by_name("churn-retrain")
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`prefect.flow_run_id` = '{monthly.id}'"
    )
    assert run.data.params["period"] == "2026-03"
    assert run.data.params["data.rows"] == str(ROWS)
    assert run.data.tags["decision.verdict"] == "promote-first"
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    # The model went through the server's artifact proxy into the profile's directory.
    assert any((profile.home / "mlflow-pg" / "artifacts").rglob("MLmodel"))

    # (b) A bad month by hand: rejected by the gate, an alert naming the problem, champion kept.
    profile.alerts.clear()
    since = time.monotonic()
    rejected = _run_deployment(
        profile, "retrain/manual", period="2026-04", data=str(data / "bad-2026-04.csv")
    )
    _timed(profile, "rejected manual run", since)
    assert rejected.state.is_failed(), rejected.state
    assert "missing column Contract" in (rejected.state.message or "")
    wait_for(
        "the run's alert",
        lambda: [t for t in profile.alerts.texts() if "missing column Contract" in t] or None,
        seconds=30,
    )
    automation = wait_for(
        "the automation's notification",
        lambda: [t for t in profile.alerts.texts() if "churn-retrain: flow run" in t] or None,
        seconds=60,
    )
    assert str(rejected.id) in automation[0] and "Failed" in automation[0]
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"

    # (c) `status` against the MLflow server.
    status = run_cli("status", "--json", env=profile.env, cwd=ROOT, timeout=120)
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert found["champion"]["version"] == "1" and found["versions"] == 1

    # (d) Both servers kept it all in PostgreSQL.
    with profile.connect("prefect") as db:
        states = dict(
            db.execute(
                "SELECT id::text, state_type::text FROM flow_run WHERE id::text = ANY(%s)",
                [[str(monthly.id), str(rejected.id)]],
            ).fetchall()
        )
    assert states == {str(monthly.id): "COMPLETED", str(rejected.id): "FAILED"}
    with profile.connect("mlflow") as db:
        (status_row,) = db.execute(
            "SELECT status FROM runs WHERE run_uuid = %s", [run.info.run_id]
        ).fetchall()
        versions = db.execute(
            "SELECT version, run_id FROM model_versions WHERE name = %s", [MODEL]
        ).fetchall()
        aliases = db.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = %s", [MODEL]
        ).fetchall()
    assert status_row == ("FINISHED",)
    assert versions == [(1, run.info.run_id)]
    assert ("champion", 1) in aliases


@pytest.mark.slow
def test_the_mlflow_server_can_keep_artifacts_in_an_s3_compatible_bucket(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make mlflow-server-pg ARTIFACTS=s3://...`: clients upload through the server's proxy,
    so only the server holds the bucket's credentials (moto's S3 server stands in for S3)."""
    from mlflow.tracking import MlflowClient

    from tests.data_servers import S3

    # With a bucket behind it the server offers presigned downloads straight from the bucket,
    # which moto refuses under IAM auth: read back through the server (README), fail fast.
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

    s3 = S3(root=profile.home).start()
    server = None
    try:
        s3.client().create_bucket(Bucket="churn-mlflow")
        port = free_port()
        log = profile.home / "mlflow-s3.log"
        since = time.monotonic()
        server = start(
            [
                "make",
                "mlflow-server-pg",
                f"PG_PORT={profile.ports['PG_PORT']}",
                f"MLFLOW_PORT={port}",
                "ARTIFACTS=s3://churn-mlflow/mlflow",
            ],
            env={**clean_env(CHURN_RETRAIN_HOME=str(profile.home)), **s3.env()},
            log=log,
            cwd=ROOT,
        )
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180, process=server, log=log)
        _timed(profile, "mlflow-server-pg (s3) healthy", since)
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        experiment_id = client.create_experiment("churn-profile-s3")
        run = client.create_run(experiment_id)
        client.log_text(run.info.run_id, "month 2026-03", "notes/period.txt")
        client.set_terminated(run.info.run_id)
        listing = s3.client().list_objects_v2(Bucket="churn-mlflow", Prefix="mlflow/")
        keys = [item["Key"] for item in listing.get("Contents", [])]
        assert keys == [f"mlflow/{experiment_id}/{run.info.run_id}/artifacts/notes/period.txt"]
        back = client.download_artifacts(run.info.run_id, "notes/period.txt", str(profile.home))
        assert Path(back).read_text() == "month 2026-03"
    finally:
        if server is not None:
            stop(server)
        s3.stop()
