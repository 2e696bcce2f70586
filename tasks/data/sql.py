"""Read a month's rows from a SQL database through SQLAlchemy, the period bound as a parameter.

A `table` source selects `* FROM table` where its period column is the month (`2026-03`) or,
by the column's declared type, a date or time in it (identifiers quoted by SQLAlchemy, values
bound, never pasted from the parameters); a `query` source runs the given SELECT with
`:period` bound. Waits are bounded: the connect by the read timeout, the whole query and fetch
by the read's `Deadline` (the server's `statement_timeout` on PostgreSQL, and `Deadline.call`,
which cancels the query on any driver that can). Messages name the database without
credentials and never quote a value from the data.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

import pandas as pd

from tasks.data.fetch import READ_TIMEOUT_SECONDS
from tasks.data.period import describe_kind, month_bounds, no_rows
from tasks.data.request import SourceOptions
from tasks.data.source import Location, ReadLimits, Source
from tasks.data.typed import check_typed_frame
from tasks.errors import DataSourceMisconfigured, SnapshotRejected, SnapshotUnavailable
from tasks.runtime.deadline import Deadline, DeadlineExceeded

_PERIOD_BIND = re.compile(r"(?<!:):period\b")
_DRIVER_EXTRAS = {"psycopg": "postgres", "psycopg2": "postgres"}
#: Rows of a table's period column read to say what it holds, when none is the period's.
_SAMPLE_ROWS = 1000


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

    url, shown, options, period = location.text, location.shown, location.options, location.period
    timeout = deadline.timeout(READ_TIMEOUT_SECONDS)
    _statement(options, period, shown=shown)  # a table or a query: refused before connecting
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
                # A table's period column may hold the month or dates: its type says which.
                kind = _period_type(connection, options) if options.table else None
                statement, params = _statement(options, period, shown=shown, period_type=kind)
                frame = pd.read_sql_query(statement, connection, params=params)
                if frame.empty and options.table:
                    _refuse_unknown_periods(connection, options, period, shown=shown)
                return frame
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


def _statement(
    options: SourceOptions, period: str, *, shown: str, period_type: Any = None
) -> tuple[Any, dict[str, Any]]:
    """The SELECT of the month's rows and its parameters; a table's rows are selected by
    their period column, whose type (`period_type`, when known) says how."""
    import sqlalchemy as sa

    if options.table and options.query:
        raise DataSourceMisconfigured(f"Snapshot {shown}: give a table or a query, not both")
    if options.table:
        schema, _, name = options.table.rpartition(".")
        table = sa.table(name, schema=schema or None)
        condition, params = _period_condition(options, period, period_type, shown=shown)
        return sa.select(sa.text("*")).select_from(table).where(condition), params
    if options.query:
        if _PERIOD_BIND.search(options.query):
            return sa.text(options.query), {"period": period}
        return sa.text(options.query), {}
    raise DataSourceMisconfigured(
        f"Snapshot {shown}: a database source needs a table (--source.table) or a query "
        "(--source.query)"
    )


def _period_condition(
    options: SourceOptions, period: str, period_type: Any, *, shown: str
) -> tuple[Any, dict[str, Any]]:
    """Which rows are the period's, bound as parameters: dates and times within the month
    (as `in_period` reads them: zoned times in UTC, as pandas returns them), or as text the
    month itself or an ISO date or time in it (which sort as the dates do)."""
    import sqlalchemy as sa

    column: Any = sa.column(options.period_column)
    start, end = month_bounds(period)
    if isinstance(period_type, sa.DateTime) and period_type.timezone:
        first, after = (datetime.combine(day, time(), tzinfo=UTC) for day in (start, end))
        bound: Any = sa.DateTime(timezone=True)
        condition = (column >= sa.bindparam("first", type_=bound)) & (
            column < sa.bindparam("after", type_=bound)
        )
        return condition, {"first": first, "after": after}
    if isinstance(period_type, sa.Date | sa.DateTime):
        condition = (column >= sa.bindparam("first", type_=sa.Date())) & (
            column < sa.bindparam("after", type_=sa.Date())
        )
        return condition, {"first": start, "after": end}
    if period_type is None or isinstance(period_type, sa.String | sa.types.NullType):
        dated = (column >= sa.bindparam("first")) & (column < sa.bindparam("after"))
        condition = (column == sa.bindparam("period")) | dated
        return condition, {"period": period, "first": start.isoformat(), "after": end.isoformat()}
    if isinstance(period_type, sa.Boolean):
        kind = "true/false values"
    elif isinstance(period_type, sa.Numeric | sa.Integer):
        kind = "numbers"
    else:
        kind = f"{period_type} values"
    what = f"table {options.table}"
    raise SnapshotRejected(
        f"Snapshot {shown}: {no_rows(what, period, options.period_column, kind)}"
    )


def _period_type(connection: Any, options: SourceOptions) -> Any:
    """The type the database declares for the table's period column; None if it cannot be
    read (the query then says what is wrong, as without this)."""
    import sqlalchemy as sa

    schema, _, name = str(options.table).rpartition(".")
    try:
        columns = sa.inspect(connection).get_columns(name, schema=schema or None)
    except sa.exc.SQLAlchemyError:
        connection.rollback()  # PostgreSQL refuses anything more in a failed transaction
        return None
    wanted = options.period_column
    exact = [c["type"] for c in columns if c["name"] == wanted]
    folded = [c["type"] for c in columns if str(c["name"]).lower() == wanted.lower()]
    found = exact or folded
    return found[0] if len(found) == 1 else None


def _refuse_unknown_periods(
    connection: Any, options: SourceOptions, period: str, *, shown: str
) -> None:
    """With no row for the period: `SnapshotRejected` saying what the period column holds
    (by kind, from a few rows, never quoted) when it is neither months nor dates."""
    import sqlalchemy as sa

    schema, _, name = str(options.table).rpartition(".")
    sample: Any = (
        sa.select(sa.column(options.period_column))
        .select_from(sa.table(name, schema=schema or None))
        .limit(_SAMPLE_ROWS)
    )
    try:
        values = pd.read_sql_query(sample, connection).iloc[:, 0]
    except sa.exc.SQLAlchemyError:
        connection.rollback()
        return  # the typed guards' own "no rows" then
    kind = describe_kind(values)
    if kind is not None:
        what = f"table {options.table}"
        raise SnapshotRejected(
            f"Snapshot {shown}: {no_rows(what, period, options.period_column, kind)}"
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
