"""The data location scheduled runs read when their `data` parameter is empty.

It lives in the Prefect Variable `churn-retrain-data` on the server the runs use, so the
monthly deployment reads the business's data without a redeploy when the location changes:
`make deploy DATA=…` or `churn-retrain source --data …` sets it. Its value is the location
(a string) or `{"data": location, "source": {format, table, query, period_column}}`. Put
passwords in a Prefect Secret block and write `{secret:NAME}` in the location: a Variable is
shown in the UI, a Secret is not.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tasks.data.request import GENERATED, SourceOptions
from tasks.errors import DataSourceMisconfigured
from tasks.settings import redact_uri

DATA_VARIABLE = "churn-retrain-data"


def find_configured_source() -> tuple[str, SourceOptions] | None:
    """The location and read options in the Variable, or None when it is not set."""
    from prefect.variables import Variable

    value = Variable.get(DATA_VARIABLE, default=None)
    if value is None or value == "":
        return None
    return parse_configured(value)


def parse_configured(value: Any) -> tuple[str, SourceOptions]:
    """The Variable's value as (location, options); `DataSourceMisconfigured` if malformed."""
    data, options = _location(value, DATA_VARIABLE)
    if data == GENERATED:
        raise DataSourceMisconfigured(
            f"the Prefect Variable {DATA_VARIABLE} says {GENERATED!r}: scheduled runs never "
            "train on generated rows; pass data=generated to a run instead"
        )
    return data, options


def _location(value: Any, variable: str) -> tuple[str, SourceOptions]:
    """A location Variable's value (a string, or `{"data": ..., "source": {...}}`) as
    (location, options); `DataSourceMisconfigured` naming `variable` if malformed."""
    options: Any
    if isinstance(value, str):
        data, options = value, {}
    elif isinstance(value, dict) and isinstance(value.get("data"), str) and value["data"]:
        data, options = value["data"], value.get("source") or {}
    else:
        raise DataSourceMisconfigured(
            f"the Prefect Variable {variable} must hold a location or "
            '{"data": location, "source": {...}}'
        )
    try:
        return data, SourceOptions.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"source.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
        )
        raise DataSourceMisconfigured(f"the Prefect Variable {variable}: {problems}") from None


def set_configured_source(data: str, options: SourceOptions) -> dict[str, Any]:
    """Store the location (and its non-default options) in the Variable; returns the value."""
    from prefect.variables import Variable

    parse_configured(data)  # same checks as on reading
    value: dict[str, Any] = {"data": data}
    chosen = options.model_dump(exclude_defaults=True)
    if chosen:
        value["source"] = chosen
    Variable.set(DATA_VARIABLE, value, overwrite=True)
    return value


def describe_configured(value: tuple[str, SourceOptions] | None) -> str:
    """One line for a person, credentials left out."""
    if value is None:
        return f"no data source configured (Prefect Variable {DATA_VARIABLE} not set)"
    data, options = value
    chosen = options.model_dump(exclude_defaults=True)
    extra = "".join(f", {k}={v}" for k, v in chosen.items() if k != "query")
    if options.query:
        extra += ", a query"
    return f"data source {redact_uri(data)}{extra} (Prefect Variable {DATA_VARIABLE})"


#: Where the `score/monthly-base` deployment reads the customer base and writes its scores when
#: its `data` / `output` parameters are empty (`prefect variable set NAME VALUE`).
SCORE_BASE_VARIABLE = "churn-retrain-score-base"
SCORE_OUTPUT_VARIABLE = "churn-retrain-score-output"


def find_score_base() -> tuple[str, SourceOptions] | None:
    """The customer base to score and its read options, from the Variable; None when unset."""
    from prefect.variables import Variable

    value = Variable.get(SCORE_BASE_VARIABLE, default=None)
    if value is None or value == "":
        return None
    return _location(value, SCORE_BASE_VARIABLE)


def find_score_output() -> str | None:
    """Where scores go, from the Variable (`{period}` and `{version}` filled in later)."""
    from prefect.variables import Variable

    value = Variable.get(SCORE_OUTPUT_VARIABLE, default=None)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DataSourceMisconfigured(f"the Prefect Variable {SCORE_OUTPUT_VARIABLE}: not a path")
    return value
