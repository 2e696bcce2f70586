"""Real data servers for the source tests: a throwaway PostgreSQL cluster and an S3 endpoint.

PostgreSQL is the real server (PostgreSQL 15's `initdb`/`pg_ctl`, a fresh cluster on a free
port, password authentication over TCP). No real S3 runs on this machine, so `s3://` is served
by moto's server mode, a separate process speaking the S3 protocol on 127.0.0.1, with IAM
authentication switched on so that wrong credentials are refused as S3 would refuse them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.servers import BIN, clean_env, free_port, start, stop, wait_http

PG_USER = "churn"
PG_PASSWORD = "pg-Secret-4711"  # a test secret: no output of the project may contain it


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the command as the postgres user."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@dataclass
class Postgres:
    """A PostgreSQL cluster of its own: `start()`, `url(...)`, `stop()`."""

    root: Path
    port: int = 0

    @classmethod
    def create(cls) -> Postgres:
        root = Path(tempfile.mkdtemp(prefix="churn-pg-"))
        root.chmod(0o755)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(root, entry.pw_uid, entry.pw_gid)
        return cls(root=root)

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            _as_postgres(list(args)), capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> Postgres:
        self.port = free_port()
        pwfile = self.root / "pw"
        pwfile.write_text(PG_PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        self._run(
            "initdb", "-D", str(self.root / "data"), "-U", PG_USER, "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def url(self, database: str = "postgres", *, password: str = PG_PASSWORD) -> str:
        return f"postgresql+psycopg://{PG_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


S3_KEY_ID = "AKIACHURNRETRAINTEST"


@dataclass
class S3:
    """moto's S3 server in its own process, with a user whose keys it checks."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    endpoint: str = ""
    key_id: str = ""
    secret: str = ""

    def start(self) -> S3:
        port = free_port()
        log = self.root / "moto.log"
        # The first actions (creating the user, its key and the bucket) need no credentials.
        env = clean_env(INITIAL_NO_AUTH_ACTION_COUNT="3")
        self.process = start(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env=env, log=log
        )
        self.endpoint = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{self.endpoint}/moto-api/", timeout=60, process=self.process, log=log)
            self._create_user()
        except BaseException:
            self.stop()  # a half-started server is not left behind
            raise
        return self

    def _create_user(self) -> None:
        import boto3

        iam = boto3.client(
            "iam", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="x", aws_secret_access_key="x",
        )  # fmt: skip
        iam.create_user(UserName="churn")
        iam.put_user_policy(
            UserName="churn",
            PolicyName="s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "s3:*", "Resource": "*"}]}',
        )
        key = iam.create_access_key(UserName="churn")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]

    def env(self, *, secret: str | None = None) -> dict[str, str]:
        """The AWS variables a run reads its credentials and endpoint from."""
        return {
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": secret or self.secret,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.key_id, aws_secret_access_key=self.secret,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
