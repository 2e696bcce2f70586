"""A file's bytes, from a local path, an fsspec location (`file://`, `s3://`, `gs://`, `abfs://`)
or an http(s) URL, within a size limit and the read's `Deadline`.

http(s) goes through httpx, the HTTP client of the data and the alerts, with a streamed body, a timeout on each connect and read, and a URL's
`user:password@` sent as basic auth, never as part of a host name. Everything else goes through
fsspec, which the cloud filesystems plug into. Either way the whole read ends by the deadline:
it runs under `Deadline.call`, which closes the response (or file) when time is up. A 4xx
answer, a missing file or refused credentials is `SnapshotRejected`; a 5xx or 429 answer, no
answer in time or no connection is `SnapshotUnavailable`, which the load task retries while the
deadline leaves time. Messages name the location without credentials and never quote an answer.
"""

from __future__ import annotations

import http
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from tasks.data.request import is_url
from tasks.errors import DataSourceMisconfigured, SnapshotRejected, SnapshotUnavailable
from tasks.runtime.deadline import Deadline, DeadlineExceeded

#: Each connect and each read of a source waits at most this long.
READ_TIMEOUT_SECONDS = 30.0
_CHUNK = 4 * 1024 * 1024
#: Answers worth asking again: the server is busy or broken now, the file may be fine later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
#: The extra that provides a cloud filesystem (pyproject's optional dependencies).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "abfs": "azure", "abfss": "azure"}


def fetch_bytes(
    location: str,
    *,
    shown: str,
    deadline: Deadline,
    max_bytes: int,
    timeout: float = READ_TIMEOUT_SECONDS,
) -> bytes:
    """The bytes at `location`, refused over `max_bytes`; each connect and read within
    `timeout`, the whole read by `deadline`."""
    if is_url(location):
        return _download(location, shown=shown, deadline=deadline, limit=max_bytes, timeout=timeout)
    fs, path = open_filesystem(location, shown=shown, timeout=deadline.timeout(timeout))
    opened: list[Any] = []

    def read() -> bytes:
        info = fs.info(path)
        if info.get("type") == "directory":
            raise SnapshotRejected(
                f"Snapshot {shown}: is a folder; a folder is read as Parquet "
                "(set the format to parquet, or name the file)"
            )
        if (info.get("size") or 0) > max_bytes:
            raise SnapshotRejected(
                f"Snapshot {shown}: file is {info['size']:,} bytes, over the "
                f"{max_bytes:,}-byte limit"
            )
        opened.append(fs.open(path, "rb", block_size=_CHUNK))
        with opened[0] as handle:
            return _read_up_to(handle.read, max_bytes, shown=shown)

    return storage_call(read, shown=shown, deadline=deadline, cancel=lambda: opened[0].close())


def _read_up_to(read: Any, limit: int, *, shown: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise SnapshotRejected(f"Snapshot {shown}: over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _download(
    location: str, *, shown: str, deadline: Deadline, limit: int, timeout: float
) -> bytes:
    import httpx

    url, auth = _without_credentials(location)
    responses: list[Any] = []
    per_call: list[float] = []

    def read() -> bytes:
        per_call.append(deadline.timeout(timeout))
        with (
            httpx.Client(timeout=per_call[-1], auth=auth, follow_redirects=True) as c,
            c.stream("GET", url) as response,
        ):
            responses.append(response)
            if response.status_code >= 400:
                raise _answered(shown, response.status_code)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SnapshotRejected(
                    f"Snapshot {shown}: the server announces {int(declared):,} bytes, over the "
                    f"{limit:,}-byte limit"
                )
            return _read_up_to(_Chunks(response.iter_bytes(_CHUNK)).read, limit, shown=shown)

    try:
        return deadline.call(read, cancel=lambda: responses and responses[0].close())
    except DeadlineExceeded:
        raise too_slow(shown, deadline, what="download") from None
    except httpx.HTTPError as exc:
        # A read timeout is capped at the deadline, so the two can end together: past the
        # deadline, the deadline is what ended the download.
        if deadline.expired or (per_call and per_call[-1] < timeout):
            raise too_slow(shown, deadline, what="download") from None
        # The timeout that was set, not the time measured (a loaded machine adds to it).
        raise _unreachable(shown, exc, waited=per_call[-1] if per_call else timeout) from None


class _Chunks:
    """An iterator of byte chunks read like a file (`read(n)` ignores n: chunks are bounded)."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = iter(chunks)

    def read(self, _: int) -> bytes:
        return next(self._chunks, b"")


def _without_credentials(location: str) -> tuple[str, tuple[str, str] | None]:
    parts = urlsplit(location)
    if "@" not in parts.netloc:
        return location, None
    netloc = parts.netloc.rpartition("@")[2]
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=netloc)), auth


def _answered(shown: str, status: int) -> SnapshotRejected | SnapshotUnavailable:
    try:
        phrase = f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    if status in _RETRYABLE_STATUSES or 500 <= status <= 599:
        return SnapshotUnavailable(
            f"Snapshot {shown}: the server answered HTTP {status}{phrase}; try again later"
        )
    hint = {
        401: "; the URL needs credentials (user:password@ or a signed link)",
        403: "; check the credentials or the link's signature (expired?)",
        404: "; is the month delivered yet, and is the {period} in the URL right?",
        410: "; is the month delivered yet, and is the {period} in the URL right?",
    }.get(status, "")
    return SnapshotRejected(f"Snapshot {shown}: the server answered HTTP {status}{phrase}{hint}")


def _unreachable(shown: str, exc: BaseException, *, waited: float) -> SnapshotUnavailable:
    import httpx

    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        problem = f"no answer within {waited:g} s (timed out)"
    elif isinstance(exc, httpx.ConnectError) and "refused" in text:
        problem = "connection refused: nothing listens there (server down?)"
    elif isinstance(exc, httpx.ConnectError) and ("name" in text or "resolution" in text):
        problem = "host name not found"
    elif isinstance(exc, httpx.TransportError):
        problem = f"the connection broke ({type(exc).__name__})"
    else:
        problem = f"connection failed ({type(exc).__name__})"
    return SnapshotUnavailable(f"Snapshot {shown}: {problem}")


def open_filesystem(location: str, *, shown: str, timeout: float) -> tuple[Any, str]:
    """The fsspec filesystem and path of `location`, with bounded connects and reads."""
    import fsspec

    scheme = location.partition("://")[0] if "://" in location else "file"
    # A fresh filesystem each run: a cached one would keep last month's credentials.
    options: dict[str, Any] = {"skip_instance_cache": True}
    if scheme in ("s3", "s3a"):
        options["config_kwargs"] = {
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
    try:
        return fsspec.core.url_to_fs(location, **options)
    except ImportError as exc:
        extra = _EXTRAS.get(scheme, scheme)
        raise DataSourceMisconfigured(
            f"Snapshot {shown}: reading {scheme}:// needs the `{extra}` extra "
            f"(uv sync --extra {extra}): {type(exc).__name__}"
        ) from None
    except ValueError as exc:  # unknown protocol
        raise DataSourceMisconfigured(f"Snapshot {shown}: {exc}") from None


def storage_call(
    operation: Any, *, shown: str, deadline: Deadline, cancel: Any | None = None
) -> Any:
    """A filesystem operation by the deadline, its errors as named failures."""
    try:
        return deadline.call(operation, cancel=cancel)
    except DeadlineExceeded:
        raise too_slow(shown, deadline) from None
    except Exception as exc:
        raise storage_error(shown, exc) from None


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


def too_slow(shown: str, deadline: Deadline, *, what: str = "read") -> SnapshotUnavailable:
    return SnapshotUnavailable(
        f"Snapshot {shown}: {what} not finished within {deadline.seconds:g} s (the deadline, "
        "CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS)"
    )
