"""prefect.yaml against a real Prefect server and process worker, as in production."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.alert_receivers import AlertReceiver, receiver
from tests.data_servers import PG_PASSWORD, Postgres
from tests.servers import BIN, clean_env, free_port, run_cli, start, stop, wait_http

ROOT = Path(__file__).resolve().parents[2]
MODEL = "telco-churn"
FAST = {"data": "generated", "models": ["lr"], "folds": 3, "generated_rows": 1500}


def _deployments() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def test_monthly_schedule_is_the_first_of_each_month() -> None:
    from prefect.server.schemas.schedules import CronSchedule

    (schedule,) = _deployments()["monthly"]["schedules"]
    assert schedule["cron"] == "0 2 1 * *" and schedule["slug"] == "monthly-retrain"
    assert schedule["timezone"] == "UTC" and schedule["active"] is True
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    start_at = datetime(2026, 11, 26, 12, tzinfo=ZoneInfo("UTC"))
    dates = asyncio.run(cron.get_dates(n=14, start=start_at))
    assert [d.day for d in dates] == [1] * 14 and {d.hour for d in dates} == {2}
    assert dates[0].month == 12 and dates[1].year == 2027  # next is Dec 1, then every month


def test_retrains_never_overlap_by_configuration() -> None:
    for name in ("monthly", "manual"):
        deployment = _deployments()[name]
        assert deployment["entrypoint"] == "flows/retrain.py:retrain"
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        assert deployment["work_pool"]["name"] == "churn-retrain"


@pytest.fixture(scope="module")
def alerts() -> Iterator[AlertReceiver]:
    with receiver() as server:
        yield server


@pytest.fixture(scope="module")
def prefect_stack(
    tmp_path_factory: pytest.TempPathFactory, alerts: AlertReceiver
) -> Iterator[dict[str, str]]:
    """A real `prefect server` (SQLite in a temp dir), the deployments, and a process worker
    whose runs alert the receiver on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("prefect-stack")
    port = free_port()
    env = clean_env(
        CHURN_RETRAIN_ALERT_URL=alerts.url,
        PREFECT_HOME=str(tmp / "prefect"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_WORKER_QUERY_SECONDS="1",
        CHURN_RETRAIN_HOME=str(tmp / "state"),
    )
    (tmp / "prefect").mkdir()
    server = start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        log=tmp / "server.log",
    )
    worker = None
    try:
        wait_http(
            f"http://127.0.0.1:{port}/api/health",
            timeout=90,
            process=server,
            log=tmp / "server.log",
        )
        # The documented command, verbatim.
        subprocess.run(
            ["make", "deploy"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=180
        )
        worker = start(
            [str(BIN / "prefect"), "worker", "start", "--pool", "churn-retrain"],
            env=env,
            log=tmp / "worker.log",
            cwd=ROOT,
        )
        yield env
    finally:
        if worker is not None:
            stop(worker)
        stop(server)


def _with_api(env: dict[str, str]) -> Any:
    """Prefect client settings pointing at the test server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]})


def _mlflow_client(env: dict[str, str]) -> MlflowClient:
    uri = f"sqlite:///{env['CHURN_RETRAIN_HOME']}/mlflow.db"
    # Both: an earlier in-process run (configure_tracking) leaves its registry URI set globally.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient()


def _run(env: dict[str, str], period: str, *, timeout: float, **params: Any) -> Any:
    """Start the manual deployment through the REST API the UI uses (create_flow_run)."""
    from prefect.deployments import run_deployment

    with _with_api(env):
        return run_deployment(
            "retrain/manual",
            parameters={"params": {"period": period, "seed": 7, **FAST, **params}},
            timeout=timeout,
        )


@pytest.mark.slow
def test_the_run_form_shows_the_rule_from_its_one_model(prefect_stack: dict[str, str]) -> None:
    """The Custom-run form of `retrain/manual` is the JSON schema of RetrainParameters: the
    campaign and the segments with their descriptions and bounds, nothing retyped."""
    from prefect.client.orchestration import get_client

    from flows.parameters import RetrainParameters
    from tasks.decision.campaign import Campaign
    from tasks.decision.rule import SegmentGuard

    async def schema() -> dict[str, Any]:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("retrain/manual")
            return dict(deployment.parameter_openapi_schema or {})

    with _with_api(prefect_stack):
        form = asyncio.run(schema())
    definitions = form["definitions"]
    for model in (Campaign, SegmentGuard):
        shown = definitions[model.__name__]["properties"]
        for name, field in model.model_fields.items():
            assert shown[name]["description"] == field.description, name
    assert definitions["Campaign"]["properties"]["save_rate"]["exclusiveMinimum"] == 0.0
    assert definitions["Campaign"]["properties"]["capacity"]["default"] == 0.1
    metrics = definitions["DecisionRule"]["properties"]["metric"]["enum"]
    assert {"recall_at_capacity", "lift_at_capacity", "retention_value_at_capacity"} <= set(metrics)
    rule = definitions["DecisionRule"]["properties"]
    assert {"campaign", "segments"} <= set(rule) and "rule" in definitions[
        "RetrainParameters"]["properties"]  # fmt: skip
    assert RetrainParameters.model_json_schema()["$defs"]["Campaign"]["properties"].keys() == (
        definitions["Campaign"]["properties"].keys()
    )


def test_manual_run_with_parameters_completes_and_is_recorded(
    prefect_stack: dict[str, str],
) -> None:
    # Non-default parameters: a constant-score model admitted by a zero floor (so the next
    # test's challenger clearly beats it).
    flow_run = _run(prefect_stack, "2025-07", timeout=600, models=["dummy"], rule={"floor": 0.0})
    assert flow_run.state.is_completed(), flow_run.state
    client = _mlflow_client(prefect_stack)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("churn-retrain").experiment_id],
        filter_string="tags.`data.period` = '2025-07'",
    )
    assert run.data.tags["decision.verdict"] == "promote-first"
    assert run.data.tags["prefect.flow_run_id"] == str(flow_run.id)
    assert run.data.params["seed"] == "7" and run.data.params["models"] == '["dummy"]'
    assert run.data.params["rule.floor"] == "0.0"
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.run_id == run.info.run_id


@pytest.mark.slow
def test_same_period_twice_runs_one_at_a_time_and_promotes_once(
    prefect_stack: dict[str, str],
) -> None:
    from prefect.client.orchestration import get_client

    # Naive Bayes beats last month's constant-score champion on AUC (its calibration is worse,
    # so no guardrails here); the identical second run ties.
    weak = {
        "models": ["nb"],
        "rule": {"method": "point", "min_improvement": 0.0, "guardrails": []},
    }
    first, second = (_run(prefect_stack, "2025-08", timeout=0, **weak) for _ in range(2))
    states: dict[str, set[str]] = {str(first.id): set(), str(second.id): set()}
    overlap = waited = False
    deadline = time.monotonic() + 600
    with _with_api(prefect_stack), get_client(sync_client=True) as api:
        while time.monotonic() < deadline:
            now = {fid: api.read_flow_run(fid).state for fid in states}
            for fid, state in now.items():
                states[fid].add(state.name)
            running = [s.is_running() for s in now.values()]
            overlap |= all(running)
            waited |= any(running) and any(s.is_scheduled() for s in now.values())
            if all(s.is_final() for s in now.values()):
                break
            time.sleep(0.5)
        final = [api.read_flow_run(fid).state for fid in states]
    assert all(s.is_completed() for s in final), final
    assert not overlap, states
    # The later run was held back (queue limit / concurrency slot) while the other ran.
    assert waited, states

    client = _mlflow_client(prefect_stack)
    runs = client.search_runs(
        [client.get_experiment_by_name("churn-retrain").experiment_id],
        filter_string="tags.`data.period` = '2025-08'",
    )
    # The constant-score champion is below the default floor: replaced, then a tie.
    assert sorted(r.data.tags["decision.verdict"] for r in runs) == ["replace-below-floor", "tie"]

    # A clearly better model for the same month would win, but the month already promoted once.
    better = _run(prefect_stack, "2025-08", timeout=600, rule=weak["rule"])
    assert better.state.is_completed(), better.state
    runs = client.search_runs(
        [client.get_experiment_by_name("churn-retrain").experiment_id],
        filter_string=f"tags.`prefect.flow_run_id` = '{better.id}'",
    )
    assert [r.data.tags["decision.verdict"] for r in runs] == ["already-promoted"]
    versions = client.search_model_versions(
        f"name = '{MODEL}' and tags.idempotency_key = '{MODEL}:2025-08'"
    )
    assert sorted(v.tags["promoted"] for v in versions) == ["false", "false", "true"]


@pytest.mark.slow
def test_validate_deployment_checks_a_delivery_without_training(
    prefect_stack: dict[str, str], tmp_path: Path
) -> None:
    """The data engineers' path from the UI: a bad delivery fails the run with the problem."""
    from prefect.deployments import run_deployment

    from tasks.data.generate import generate_snapshot

    deployment = _deployments()["validate"]
    assert deployment["entrypoint"] == "flows/validate.py:validate"
    bad = generate_snapshot("2025-09", rows=400).drop(columns=["Contract"])
    bad.to_csv(tmp_path / "2025-09.csv", index=False)
    with _with_api(prefect_stack):
        flow_run = run_deployment(
            "validate-snapshot/validate",
            parameters={"params": {"data": str(tmp_path / "{period}.csv"), "period": "2025-09"}},
            timeout=300,
        )
    assert flow_run.state.is_failed(), flow_run.state
    assert "missing column Contract" in (flow_run.state.message or "")
    report = Path(prefect_stack["CHURN_RETRAIN_HOME"]) / "reports" / str(flow_run.id)
    assert (report / "validation.html").is_file()


# --- the monthly deployment reads the business's data -------------------------------------


@pytest.fixture(scope="module")
def crm(real_frame: Any) -> Iterator[Postgres]:
    """A PostgreSQL cluster whose table `telco_monthly` holds the real rows for 2026-03."""
    import sqlalchemy as sa

    pg = Postgres.create().start()
    try:
        admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text("CREATE DATABASE crm"))
        admin.dispose()
        engine = sa.create_engine(pg.url("crm"))
        real_frame.assign(period="2026-03").to_sql("telco_monthly", engine, index=False)
        engine.dispose()
        yield pg
    finally:
        pg.stop()


def _scheduled(env: dict[str, str], when: datetime) -> Any:
    """A run of the monthly deployment as its schedule makes it: no parameters of its own
    but the training options (kept small), scheduled for `when`."""
    from prefect.deployments import run_deployment

    small = {k: v for k, v in FAST.items() if k not in ("data", "generated_rows")}
    with _with_api(env):
        return run_deployment(
            "retrain/monthly", parameters={"params": small}, scheduled_time=when, timeout=600
        )


def _champion_version(env: dict[str, str]) -> str | None:
    client = _mlflow_client(env)
    try:
        return str(client.get_model_version_by_alias(MODEL, "champion").version)
    except mlflow.exceptions.MlflowException:
        return None


@pytest.mark.slow
def test_monthly_run_without_a_data_source_fails_before_training_and_alerts(
    prefect_stack: dict[str, str], alerts: AlertReceiver
) -> None:
    before = _champion_version(prefect_stack)
    alerts.clear()
    flow_run = _scheduled(prefect_stack, datetime(2026, 2, 1, 2, tzinfo=ZoneInfo("UTC")))
    assert flow_run.state.is_failed(), flow_run.state
    assert "no data source configured" in (flow_run.state.message or "")
    assert _champion_version(prefect_stack) == before
    client = _mlflow_client(prefect_stack)
    trained = client.search_runs(
        [client.get_experiment_by_name("churn-retrain").experiment_id],
        filter_string=f"tags.`prefect.flow_run_id` = '{flow_run.id}'",
    )
    assert trained == []  # failed before any MLflow run: nothing trained
    deadline = time.monotonic() + 30
    while not any("no data source configured" in t for t in alerts.texts()):
        assert time.monotonic() < deadline, alerts.texts()
        time.sleep(0.5)
    assert any("2026-02" in t for t in alerts.texts())


@pytest.mark.slow
def test_monthly_run_reads_its_period_from_postgres(
    prefect_stack: dict[str, str], crm: Postgres, alerts: AlertReceiver
) -> None:
    from prefect.blocks.system import Secret

    with _with_api(prefect_stack):
        Secret(value=PG_PASSWORD).save("churn-crm-password", overwrite=True)
    location = crm.url("crm", password="{secret:churn-crm-password}")
    env = {**prefect_stack}
    done = run_cli("source", "--data", location, "--source.table", "telco_monthly", env=env)
    assert done.returncode == 0, done.stderr
    assert "telco_monthly" in done.stdout and PG_PASSWORD not in done.stdout + done.stderr
    alerts.clear()
    flow_run = _scheduled(prefect_stack, datetime(2026, 3, 1, 2, tzinfo=ZoneInfo("UTC")))
    assert flow_run.state.is_completed(), flow_run.state
    client = _mlflow_client(prefect_stack)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("churn-retrain").experiment_id],
        filter_string=f"tags.`prefect.flow_run_id` = '{flow_run.id}'",
    )
    assert run.data.params["period"] == "2026-03" and run.data.params["data.rows"] == "7043"
    assert run.data.params["data.source"] == f"postgresql+psycopg://127.0.0.1:{crm.port}/crm"
    assert PG_PASSWORD not in json.dumps({**run.data.params, **run.data.tags})
    assert alerts.texts() == []
    shown = run_cli("source", env=env)
    assert "telco_monthly" in shown.stdout and PG_PASSWORD not in shown.stdout
    cleared = run_cli("source", "--clear", env=env)
    assert cleared.returncode == 0 and "cleared" in cleared.stdout


@pytest.mark.slow
def test_the_ui_of_a_server_on_another_port_calls_that_port(tmp_path: Path) -> None:
    """`make prefect-server PREFECT_PORT=N`: the UI's settings name port N's API and UI (before,
    the UI kept calling 4200: "Can't connect to Server API")."""
    import urllib.request

    port = free_port()
    env = clean_env(CHURN_RETRAIN_HOME=str(tmp_path / "state"))
    log = tmp_path / "server.log"
    server = start(["make", "prefect-server", f"PREFECT_PORT={port}"], env=env, log=log, cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", timeout=120, process=server, log=log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as answer:
            settings = json.loads(answer.read())
        assert settings["api_url"] == f"http://127.0.0.1:{port}/api"
    finally:
        stop(server)
