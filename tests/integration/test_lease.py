"""The registry lease on a real MLflow registry (SQLite): one holder, bounded waits, dead holders
taken over (at once on this host, at expiry from another), a lost lease noticed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tasks.registry.lease import LeaseLost, check_lease, lease_name, registry_lease
from tasks.runtime.owner import Owner

MODEL = "lease-test"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _exists(client: MlflowClient) -> bool:
    return bool(client.search_registered_models(f"name='{lease_name(MODEL)}'"))


def test_one_holder_at_a_time_and_the_lease_goes_with_it(client: MlflowClient) -> None:
    with registry_lease(MODEL, timeout_seconds=1, client=client) as lease:
        assert _exists(client)
        tags = client.get_registered_model(lease.name).tags
        assert tags["lease.token"] == lease.token and tags["lease.owner"] == lease.owner
        assert Owner.parse(lease.owner) == Owner.current()
        started = time.monotonic()
        with (
            pytest.raises(TimeoutError, match=rf"stayed with pid {os.getpid()} on "),
            registry_lease(MODEL, timeout_seconds=1.0, client=client),
        ):
            pass
        assert 1.0 <= time.monotonic() - started < 5  # bounded by the timeout
        check_lease(lease, client=client)  # still ours
    assert not _exists(client)


_HOLDER = """
import sys, time
from mlflow.tracking import MlflowClient
from tasks.registry.lease import registry_lease
uri = sys.argv[1]
with registry_lease("lease-test", timeout_seconds=5, lease_seconds=600,
                    client=MlflowClient(tracking_uri=uri, registry_uri=uri)):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_holder_killed_on_this_host_is_taken_over_at_once(
    uri: str, client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, uri], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert _exists(client)  # left behind, with 600 s to run
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="tasks.registry.lease"),
        registry_lease(MODEL, timeout_seconds=5, client=client) as lease,
    ):
        waited = time.monotonic() - started
        check_lease(lease, client=client)
    assert waited < 3, waited  # not the 600 s of its expiry
    assert f"pid {holder.pid}" in caplog.text and "its process is gone" in caplog.text


def test_a_holder_on_another_host_is_taken_over_when_its_lease_expires(
    client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    expires = time.time() + 2.0
    client.create_registered_model(lease_name(MODEL), tags={
        "lease.token": "theirs", "lease.owner": "elsewhere/boot/4242/1",
        "lease.expires_at": f"{expires:.3f}",
    })  # fmt: skip
    with (
        caplog.at_level(logging.WARNING, logger="tasks.registry.lease"),
        registry_lease(MODEL, timeout_seconds=10, client=client) as lease,
    ):
        taken = time.time()
    assert expires <= taken < expires + 2.0  # waited for the expiry, not much more
    assert lease.token != "theirs" and "it expired at" in caplog.text
    assert "pid 4242 on elsewhere" in caplog.text


def test_a_lease_taken_over_is_noticed_by_its_old_holder(client: MlflowClient) -> None:
    with registry_lease(MODEL, timeout_seconds=1, lease_seconds=0.5, client=client) as mine:
        with pytest.raises(LeaseLost, match="expires at"):
            check_lease(mine, client=client)  # less than the margin left
        time.sleep(0.6)
        with (
            registry_lease(MODEL, timeout_seconds=2, client=client),
            pytest.raises(LeaseLost, match=rf"is held by pid {os.getpid()} on "),
        ):
            check_lease(mine, margin_seconds=0, client=client)
    # The old holder's release did not delete the new holder's lease (it was released by its
    # own holder just before): nothing is left.
    assert not _exists(client)
