"""Read a snapshot from any fsspec filesystem (local, `file://`, `s3://`, `gs://`, `abfs://`).

Bounded waits: on object storage every connect and read waits at most `timeout` seconds (the
filesystem's own settings, e.g. botocore's for `s3://`), and the whole read at most `deadline`
seconds (checked between chunks, and by a watchdog for Parquet). Credentials come from the
filesystem's usual places (for `s3://`: the AWS_* variables, `~/.aws`, an instance role;
`AWS_ENDPOINT_URL` for an S3-compatible server) and never appear in a message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tasks.errors import DataSourceMisconfigured, SnapshotRejected, SnapshotUnavailable

_CHUNK = 4 * 1024 * 1024
#: The extra that provides a cloud filesystem (pyproject's optional dependencies).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "abfs": "azure", "abfss": "azure",
           "az": "azure"}  # fmt: skip
_T = TypeVar("_T")


def open_filesystem(location: str, *, shown: str, timeout: float) -> tuple[Any, str]:
    """The fsspec filesystem and path of `location`, with bounded connects and reads."""
    import fsspec

    scheme = location.partition("://")[0] if "://" in location else "file"
    try:
        return fsspec.core.url_to_fs(location, **_storage_options(scheme, timeout))
    except ImportError as exc:
        extra = _EXTRAS.get(scheme, scheme)
        raise DataSourceMisconfigured(
            f"Snapshot {shown}: reading {scheme}:// needs the `{extra}` extra "
            f"(uv sync --extra {extra}): {type(exc).__name__}"
        ) from None
    except ValueError as exc:  # unknown protocol
        raise DataSourceMisconfigured(f"Snapshot {shown}: {exc}") from None


def _storage_options(scheme: str, timeout: float) -> dict[str, Any]:
    # A fresh filesystem each run: a cached one would keep last month's credentials.
    options: dict[str, Any] = {"skip_instance_cache": True}
    if scheme in ("s3", "s3a"):
        options["config_kwargs"] = {
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
    return options


def read_file_bytes(
    location: str, *, shown: str, timeout: float, deadline: float, max_bytes: int
) -> bytes:
    """The bytes of one file, refused over `max_bytes`, within `deadline` seconds."""
    fs, path = open_filesystem(location, shown=shown, timeout=timeout)
    started = time.monotonic()

    def read() -> bytes:
        info = fs.info(path)
        if info.get("type") == "directory":
            raise SnapshotRejected(
                f"Snapshot {shown}: is a folder; a folder is read as Parquet "
                "(set the format to parquet, or name the file)"
            )
        size = info.get("size") or 0
        if size > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: file is {size:,} bytes, over the {max_bytes:,}-byte limit"
            )
        chunks: list[bytes] = []
        total = 0
        with fs.open(path, "rb", block_size=_CHUNK) as handle:
            while chunk := handle.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise SnapshotRejected(f"Snapshot {shown}: over the {max_bytes:,}-byte limit")
                if time.monotonic() - started > deadline:
                    raise too_slow(shown, deadline)
                chunks.append(chunk)
        return b"".join(chunks)

    return storage_call(read, shown=shown, deadline=deadline)


def storage_call(operation: Callable[[], _T], *, shown: str, deadline: float) -> _T:
    """Run a filesystem operation within `deadline`, its errors as named failures.

    The operation runs in a daemon thread: a read that blocks past the deadline is abandoned
    (each socket read is bounded by the filesystem's own timeout, so the thread ends soon after).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = operation()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="churn-retrain-storage", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        raise too_slow(shown, deadline)
    if "error" in outcome:
        raise storage_error(shown, outcome["error"]) from None
    return outcome["value"]


def storage_error(shown: str, exc: BaseException) -> BaseException:
    """A named failure for what a filesystem raised; our own errors pass through."""
    if isinstance(exc, SnapshotRejected | SnapshotUnavailable | DataSourceMisconfigured):
        return exc
    if isinstance(exc, FileNotFoundError):
        return SnapshotRejected(
            f"Snapshot {shown}: not found; is the month delivered yet, and is the {{period}} "
            "in the location right?"
        )
    if isinstance(exc, PermissionError):
        return SnapshotRejected(
            f"Snapshot {shown}: access denied; check the credentials (for s3://: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the instance role) and the bucket policy"
        )
    if isinstance(exc, TimeoutError):
        return SnapshotUnavailable(f"Snapshot {shown}: no answer in time (timed out)")
    if isinstance(exc, OSError | ConnectionError) or _is_botocore_connection(exc):
        return SnapshotUnavailable(
            f"Snapshot {shown}: the storage could not be reached ({type(exc).__name__})"
        )
    return exc  # a bug: keeps its traceback


def _is_botocore_connection(exc: BaseException) -> bool:
    # botocore's EndpointConnectionError and friends, without importing botocore here.
    return any(
        cls.__name__.endswith(("ConnectionError", "TimeoutError")) for cls in type(exc).__mro__
    )


def too_slow(shown: str, deadline: float) -> SnapshotUnavailable:
    return SnapshotUnavailable(
        f"Snapshot {shown}: read not finished within {deadline:g} s (the deadline, "
        "CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS)"
    )
