"""Read a month's rows from a SQL database through SQLAlchemy, the period bound as a parameter.

A `table` source selects `* FROM table WHERE period_column = :period` (identifiers quoted by
SQLAlchemy, never pasted from the parameters); a `query` source runs the given SELECT with
`:period` bound. Waits are bounded: the connect by the read timeout, the whole query and fetch
by the read's `Deadline` (the server's `statement_timeout` on PostgreSQL, and `Deadline.call`,
which cancels the query on any driver that can). Messages name the database without
credentials and never quote a value from the data.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from tasks.data.fetch import READ_TIMEOUT_SECONDS
from tasks.data.request import SourceOptions
from tasks.data.source import Location, ReadLimits, Source
from tasks.data.typed import check_typed_frame
from tasks.errors import DataSourceMisconfigured, SnapshotRejected, SnapshotUnavailable
from tasks.runtime.deadline import Deadline, DeadlineExceeded

_PERIOD_BIND = re.compile(r"(?<!:):period\b")
_DRIVER_EXTRAS = {"psycopg": "postgres", "psycopg2": "postgres"}


class SqlSource(Source):
    """A table or query of any SQLAlchemy database (`postgresql+psycopg://…`, `sqlite:///…`)."""

    def read(self, location: Location, limits: ReadLimits) -> pd.DataFrame:
        options = location.options
        frame = read_sql_frame(location, limits.deadline)
        what = f"table {options.table}" if options.table else "query result"
        return check_typed_frame(
            frame, source=location.shown, period=location.period,
            period_column=options.period_column, what=what,
        )  # fmt: skip


def read_sql_frame(location: Location, deadline: Deadline) -> pd.DataFrame:
    """The month's rows of a database table or query, as the database typed them."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    url, shown = location.text, location.shown
    timeout = deadline.timeout(READ_TIMEOUT_SECONDS)
    statement, params = _statement(location.options, location.period, shown=shown)
    try:
        engine = sa.create_engine(
            url, poolclass=NullPool, connect_args=_connect_args(url, timeout, deadline.seconds)
        )
    except ModuleNotFoundError as exc:
        extra = _DRIVER_EXTRAS.get(exc.name or "", "the database driver")
        raise DataSourceMisconfigured(
            f"Snapshot {shown}: the driver `{exc.name}` is not installed (uv sync --extra {extra})"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise DataSourceMisconfigured(f"Snapshot {shown}: not a database URL ({exc})") from None
    connected: list[Any] = []

    def query() -> pd.DataFrame:
        try:
            connection = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise _connect_error(shown, exc, timeout) from None
        with connection:
            connected.append(connection.connection.dbapi_connection)
            try:
                return pd.read_sql_query(statement, connection, params=params)
            except sa.exc.DBAPIError as exc:
                if deadline.expired:
                    raise _too_slow(shown, deadline) from None
                raise _query_error(shown, exc) from None

    def cancel() -> None:  # the running statement, on drivers that can (psycopg, sqlite3)
        raw = connected[0] if connected else None
        stop = getattr(raw, "cancel", None) or getattr(raw, "interrupt", None)
        if stop is not None:
            stop()

    try:
        return deadline.call(query, cancel=cancel)
    except DeadlineExceeded:
        raise _too_slow(shown, deadline) from None
    finally:
        engine.dispose()


def _statement(options: SourceOptions, period: str, *, shown: str) -> tuple[Any, dict[str, str]]:
    import sqlalchemy as sa

    if options.table and options.query:
        raise DataSourceMisconfigured(f"Snapshot {shown}: give a table or a query, not both")
    if options.table:
        schema, _, name = options.table.rpartition(".")
        table = sa.table(name, schema=schema or None)
        statement = (
            sa.select(sa.text("*"))
            .select_from(table)
            .where(sa.column(options.period_column) == sa.bindparam("period"))
        )
        return statement, {"period": period}
    if options.query:
        if _PERIOD_BIND.search(options.query):
            return sa.text(options.query), {"period": period}
        return sa.text(options.query), {}
    raise DataSourceMisconfigured(
        f"Snapshot {shown}: a database source needs a table (--source.table) or a query "
        "(--source.query)"
    )


def _connect_args(url: str, timeout: float, deadline: float) -> dict[str, Any]:
    backend = url.partition("://")[0].partition("+")[0]
    if backend in ("postgresql", "postgres"):
        return {
            "connect_timeout": max(1, round(timeout)),
            "options": f"-c statement_timeout={round(deadline * 1000)}",
        }
    if backend == "sqlite":
        return {"timeout": timeout}  # waiting for a lock a writer holds
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": max(1, round(timeout)), "read_timeout": round(deadline)}
    return {}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _connect_error(shown: str, exc: Any, timeout: float) -> SnapshotRejected | SnapshotUnavailable:
    text = _first_line(exc.orig or exc)
    state = getattr(exc.orig, "sqlstate", None) or ""
    lowered = text.lower()
    if state.startswith("28") or "authentication failed" in lowered or "password" in lowered:
        return SnapshotRejected(
            f"Snapshot {shown}: the database refused the credentials; check the user and "
            "password (PGPASSWORD, or a {secret:NAME} block in the URL)"
        )
    if state == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return SnapshotRejected(f"Snapshot {shown}: the database does not exist")
    if "timeout" in lowered or "timed out" in lowered:
        return SnapshotUnavailable(f"Snapshot {shown}: no answer within {timeout:g} s (timed out)")
    if "refused" in lowered:
        return SnapshotUnavailable(
            f"Snapshot {shown}: connection refused: nothing listens there (database down?)"
        )
    if "unable to open database file" in lowered:
        return SnapshotRejected(f"Snapshot {shown}: the database file cannot be opened")
    return SnapshotUnavailable(
        f"Snapshot {shown}: could not connect to the database ({type(exc.orig).__name__})"
    )


def _query_error(shown: str, exc: Any) -> SnapshotRejected | SnapshotUnavailable:
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or ""
    text = _first_line(orig or exc)
    if state == "57014" or "interrupted" in text.lower():
        return SnapshotUnavailable(f"Snapshot {shown}: the query was cancelled (too slow)")
    # Syntax and schema errors (SQLSTATE class 42; sqlite's OperationalError) name tables and
    # columns, not values: worth showing. Others (e.g. a bad cast) may quote a value: not shown.
    schema_error = state.startswith("42") or (
        not state and type(orig).__name__ == "OperationalError" and "no such" in text.lower()
    )
    detail = (
        f": {text}"
        if schema_error
        else f" ({type(orig).__name__}{', SQLSTATE ' + state if state else ''})"
    )
    return SnapshotRejected(f"Snapshot {shown}: the query failed{detail}")


def _too_slow(shown: str, deadline: Deadline) -> SnapshotUnavailable:
    return SnapshotUnavailable(
        f"Snapshot {shown}: query not finished within {deadline.seconds:g} s (the deadline, "
        "CHURN_RETRAIN_DOWNLOAD_TIMEOUT_SECONDS)"
    )
