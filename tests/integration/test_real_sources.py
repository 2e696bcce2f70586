"""The real Telco rows from every kind of source: the same snapshot, the same gate, the same decision.

Sources are real servers and files made here at run time from ../shared/data (never committed):
CSV, CSV.gz, Parquet (one file and a Hive-partitioned folder), a PostgreSQL cluster of the
test's own, a SQLite file, and `s3://` on moto's S3 server (a stand-in: no real S3 runs on this
machine; it is a real HTTP server speaking the S3 protocol, with credentials checked).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest, SourceOptions
from tasks.errors import (
    EXIT_REJECTED,
    EXIT_SOURCE_UNAVAILABLE,
    DataSourceMisconfigured,
    SnapshotRejected,
    SnapshotUnavailable,
)
from tests.data_servers import PG_PASSWORD, S3, Postgres
from tests.registry_helpers import make_version
from tests.servers import clean_env, free_port, run_cli

pytestmark = pytest.mark.slow
PERIOD = "2026-03"
OTHER = "2026-02"  # the table and folder also hold another month: the period must select
BUCKET = "lake"


@dataclass
class Sources:
    csv: Path
    root: Path
    pg: Postgres
    s3: S3

    def locations(self) -> dict[str, tuple[str, SourceOptions]]:
        table = SourceOptions(table="telco_monthly")
        return {
            "csv": (str(self.csv), SourceOptions()),
            "csv.gz": (str(self.root / "{period}.csv.gz"), SourceOptions()),
            "parquet": (str(self.root / "{period}.parquet"), SourceOptions()),
            "parquet-folder": (str(self.root / "lake"), SourceOptions()),
            "postgres-table": (self.pg.url("crm"), table),
            "postgres-query": (
                self.pg.url("crm"),
                SourceOptions(query='SELECT * FROM telco_monthly WHERE "period" = :period'),
            ),
            "sqlite": (f"sqlite:///{self.root / 'crm.db'}", table),
            "s3-parquet": (f"s3://{BUCKET}/telco/{{period}}.parquet", SourceOptions()),
            "s3-csv.gz": (f"s3://{BUCKET}/telco/{{period}}.csv.gz", SourceOptions()),
        }


def _monthly(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row for PERIOD, the first 2,000 again for OTHER (reversed: storage order varies)."""
    return pd.concat(
        [frame.assign(period=PERIOD), frame.head(2000).iloc[::-1].assign(period=OTHER)],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def sources(
    real_csv: Path, real_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sources]:
    root = tmp_path_factory.mktemp("sources")
    raw = real_csv.read_bytes()
    (root / f"{PERIOD}.csv.gz").write_bytes(gzip.compress(raw))
    # Parquet in another row order than the CSV: the snapshot must not depend on it.
    real_frame.sample(frac=1.0, random_state=3).to_parquet(root / f"{PERIOD}.parquet")
    ds.write_dataset(
        pa.Table.from_pandas(_monthly(real_frame), preserve_index=False),
        root / "lake", format="parquet", partitioning=["period"], partitioning_flavor="hive",
    )  # fmt: skip
    monthly = _monthly(real_frame)
    engine = sa.create_engine(f"sqlite:///{root / 'crm.db'}")
    monthly.to_sql("telco_monthly", engine, index=False)
    engine.dispose()
    pg = Postgres.create().start()
    try:
        s3 = S3(root=root).start()
    except BaseException:
        pg.stop()
        raise
    try:
        admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text("CREATE DATABASE crm"))
        admin.dispose()
        engine = sa.create_engine(pg.url("crm"))
        monthly.to_sql("telco_monthly", engine, index=False, chunksize=2000)
        engine.dispose()
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(root / f"{PERIOD}.parquet"), BUCKET, f"telco/{PERIOD}.parquet")
        client.upload_file(str(root / f"{PERIOD}.csv.gz"), BUCKET, f"telco/{PERIOD}.csv.gz")
        yield Sources(csv=real_csv, root=root, pg=pg, s3=s3)
    finally:
        s3.stop()
        pg.stop()


@pytest.fixture
def s3_env(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sources.s3.env().items():
        monkeypatch.setenv(name, value)


def _load(location: str, options: SourceOptions = SourceOptions(), **kwargs: float) -> object:  # noqa: B008
    return load_snapshot.fn(SnapshotRequest(location, PERIOD, options=options), **kwargs)


@pytest.mark.usefixtures("s3_env")
def test_every_source_gives_the_same_snapshot(sources: Sources) -> None:
    snapshots = {name: _load(*where) for name, where in sources.locations().items()}
    reference = snapshots["csv"]
    assert reference.rows == 7043  # type: ignore[attr-defined]
    for name, snapshot in snapshots.items():
        assert snapshot.digest == reference.digest, name  # type: ignore[attr-defined]
        assert snapshot.frame.dtypes.to_dict() == reference.frame.dtypes.to_dict(), name  # type: ignore[attr-defined]
        assert list(snapshot.frame.columns) == list(reference.frame.columns), name  # type: ignore[attr-defined]
    # Credentials never reach the snapshot's recorded source.
    assert PG_PASSWORD not in snapshots["postgres-table"].source  # type: ignore[attr-defined]
    assert snapshots["postgres-table"].source.startswith("postgresql+psycopg://127.0.0.1:")  # type: ignore[attr-defined]


@pytest.mark.usefixtures("prefect_server", "s3_env")
def test_every_source_gives_the_same_decision(
    sources: Sources, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the nine sources' month against the same champion, same seed, the default rule:
    the same rows (digest), scores, intervals and verdict, whatever that verdict is. Each source
    runs in a state directory of its own, with the same champion (a scikit-learn model of the
    same rows, deterministic), so one source's promotion never changes the next one's champion.
    """
    fast = {"models": ["lr"], "folds": 2, "seed": 11}
    records = {}
    for name, (location, options) in sources.locations().items():
        monkeypatch.setenv("CHURN_RETRAIN_HOME", str(state_home / name))
        make_version(generate_snapshot(OTHER, seed=3, rows=3000), period=OTHER)
        records[name] = retrain(
            RetrainParameters(period=PERIOD, data=location, source=options, **fast)
        )
    assert len(records) == 9
    reference = records["csv"]
    assert reference.intervals is not None and reference.champion is not None
    for name, record in records.items():
        assert record.data_digest == reference.data_digest, name
        assert record.verdict == reference.verdict, name
        assert record.challenger.holdout == reference.challenger.holdout, name
        assert record.challenger.cv == reference.challenger.cv, name
        assert record.champion is not None
        assert record.champion.holdout == reference.champion.holdout, name
        assert record.intervals == reference.intervals, name
        assert record.holdout_rows == reference.holdout_rows, name


# --- bad input through every source --------------------------------------------------------


def test_postgres_failures_are_named_and_bounded(sources: Sources) -> None:
    url = sources.pg.url("crm")
    with pytest.raises(SnapshotRejected, match=r"refused the credentials") as wrong:
        _load(
            sources.pg.url("crm", password="not-the-password"), SourceOptions(table="telco_monthly")
        )
    with pytest.raises(SnapshotRejected, match=r"the query failed: .*nosuch") as failed:
        _load(url, SourceOptions(query="SELECT * FROM nosuch WHERE period = :period"))
    with pytest.raises(SnapshotRejected, match=r"lacks the columns: tenure$"):
        _load(url, SourceOptions(query='SELECT * FROM telco_monthly WHERE "period" = :period')
              .model_copy(update={"query": _without("tenure")}))  # fmt: skip
    with pytest.raises(SnapshotRejected, match=r"no rows for 2026-03"):
        _load(url, SourceOptions(query="SELECT * FROM telco_monthly WHERE false"))
    with pytest.raises(SnapshotRejected, match=r"2,000 rows of another period than 2026-03"):
        _load(url, SourceOptions(query="SELECT * FROM telco_monthly"))  # no WHERE: every month
    with pytest.raises(
        SnapshotRejected, match=r"column tenure has type datetime64.*expected a number"
    ):
        _load(url, SourceOptions(query=_without("tenure", ', now() AS "tenure"')))
    with pytest.raises(SnapshotRejected, match="does not exist"):
        _load(sources.pg.url("nosuchdb"), SourceOptions(table="telco_monthly"))
    for exc in (wrong, failed):
        assert PG_PASSWORD not in str(exc.value) and "not-the-password" not in str(exc.value)
        assert exc.value.exit_code == EXIT_REJECTED


def _without(column: str, instead: str = "") -> str:
    from tasks.data.schema import COLUMNS

    kept = ", ".join(f'"{c}"' for c in COLUMNS if c != column)
    return f'SELECT {kept}{instead} FROM telco_monthly WHERE "period" = :period'


def test_unreachable_database_and_slow_query_end_within_their_bounds(sources: Sources) -> None:
    dead = f"postgresql+psycopg://churn:{PG_PASSWORD}@127.0.0.1:{free_port()}/crm"
    started = time.monotonic()
    with pytest.raises(SnapshotUnavailable, match="connection refused") as refused:
        _load(dead, SourceOptions(table="telco_monthly"))
    assert time.monotonic() - started < 5 and refused.value.exit_code == EXIT_SOURCE_UNAVAILABLE
    assert PG_PASSWORD not in str(refused.value)
    started = time.monotonic()
    with pytest.raises(SnapshotUnavailable, match=r"cancelled|not finished within 2 s"):
        _load(sources.pg.url("crm"), SourceOptions(query="SELECT pg_sleep(30)"), deadline_seconds=2)
    assert time.monotonic() - started < 8


@pytest.mark.usefixtures("s3_env")
def test_object_storage_failures_are_named_and_bounded(
    sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SnapshotRejected, match=r"not found; is the month delivered yet"):
        _load(f"s3://{BUCKET}/telco/1999-01.parquet".replace("1999-01", "{period}x"))
    with pytest.raises(SnapshotRejected, match="not found"):
        _load("s3://no-such-bucket/{period}.csv")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-key")
    with pytest.raises(SnapshotRejected, match="access denied; check the credentials") as denied:
        _load(f"s3://{BUCKET}/telco/{{period}}.parquet")
    assert "wrong-secret-key" not in str(denied.value) and sources.s3.secret not in str(
        denied.value
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(SnapshotUnavailable, match=r"could not be reached|timed out"):
        _load(f"s3://{BUCKET}/telco/{{period}}.parquet", deadline_seconds=10)
    assert time.monotonic() - started < 15


def test_parquet_and_gzip_failures_are_named(sources: Sources, real_frame: pd.DataFrame) -> None:
    root = sources.root
    wrong = real_frame.assign(tenure=real_frame["tenure"].astype(bool))
    wrong.to_parquet(root / "wrong-type.parquet")
    with pytest.raises(SnapshotRejected, match=r"column tenure has type bool in the Parquet data"):
        _load(str(root / "wrong-type.parquet"))
    real_frame.drop(columns=["Contract"]).to_parquet(root / "missing.parquet")
    with pytest.raises(SnapshotRejected, match=r"lacks the columns: Contract"):
        _load(str(root / "missing.parquet"))
    (root / "fake.parquet").write_bytes(sources.csv.read_bytes()[:5000])
    with pytest.raises(SnapshotRejected, match=r"not a Parquet file"):
        _load(str(root / "fake.parquet"))
    (root / "cut.csv.gz").write_bytes(gzip.compress(sources.csv.read_bytes())[:3000])
    with pytest.raises(SnapshotRejected, match=r"not a complete gzip file"):
        _load(str(root / "cut.csv.gz"))
    (root / "bomb.csv.gz").write_bytes(gzip.compress(b"a" * 3_000_000))
    with pytest.raises(SnapshotRejected, match=r"decompresses to over the 1,000,000-byte limit"):
        _load(str(root / "bomb.csv.gz"), max_bytes=1_000_000)
    # A Parquet month is limited by its (compressed) size, not by the CSV text it would make.
    size = (root / f"{PERIOD}.parquet").stat().st_size
    assert size < len(sources.csv.read_bytes()) / 2
    assert _load(str(root / "{period}.parquet"), max_bytes=size + 1).rows == 7043  # type: ignore[attr-defined]


@pytest.mark.usefixtures("prefect_server")
def test_a_password_from_a_secret_block_is_used_and_never_shown(sources: Sources) -> None:
    from prefect.blocks.system import Secret

    Secret(value=PG_PASSWORD).save("crm-test-password", overwrite=True)
    location = sources.pg.url("crm", password="{secret:crm-test-password}")
    snapshot = _load(location, SourceOptions(table="telco_monthly"))
    assert snapshot.rows == 7043 and PG_PASSWORD not in snapshot.source  # type: ignore[attr-defined]
    with pytest.raises(DataSourceMisconfigured, match="no Prefect Secret block named 'absent'"):
        _load(sources.pg.url("crm", password="{secret:absent}"), SourceOptions(table="t"))


def test_bad_sources_through_the_command_line_lose_nothing_and_show_no_secret(
    sources: Sources, tmp_path: Path
) -> None:
    """As a user runs it: each bad source exits with its status and message; the champion a
    first run promoted stays; no MLflow run is left for the failed months; no secret shown."""
    from mlflow.tracking import MlflowClient

    env = clean_env(CHURN_RETRAIN_HOME=str(tmp_path / "state"), **sources.s3.env())
    fast = ["--models", "lr", "--folds", "2"]
    first = run_cli("run", "--period", OTHER, "--data", "generated", "--generated-rows", "1000",
                    *fast, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    table = ["--source.table", "telco_monthly"]
    cases = [
        ([ "--data", sources.pg.url("crm", password="wrong-Pass-123"), *table], 3,
         "the database refused the credentials"),
        (["--data", sources.pg.url("crm"), "--source.query", _without("tenure")], 3,
         "lacks the columns: tenure"),
        (["--data", f"postgresql+psycopg://churn:{PG_PASSWORD}@127.0.0.1:{free_port()}/crm",
          *table], 6, "connection refused"),
        (["--data", f"s3://{BUCKET}/telco/{{period}}.parquet"], 3, "access denied"),
    ]  # fmt: skip
    for args, status, message in cases:
        case_env = (
            env if "s3://" not in args[1] else {**env, "AWS_SECRET_ACCESS_KEY": "wrong-S3-key"}
        )
        done = run_cli("run", "--period", PERIOD, *args, *fast, env=case_env, timeout=200)
        output = done.stdout + done.stderr
        assert done.returncode == status, (args[1:], output[-2000:])
        assert message in output
        assert "Traceback" not in output  # an expected failure: its message, no stack trace
        for secret in (PG_PASSWORD, "wrong-Pass-123", "wrong-S3-key", sources.s3.secret):
            assert secret not in output
    uri = f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias("telco-churn", "champion").version) == "1"
    runs = client.search_runs([client.get_experiment_by_name("churn-retrain").experiment_id])
    assert [r.data.params["period"] for r in runs] == [OTHER]  # nothing trained for PERIOD
