"""Row-conditioned expectations run on masked copies give GX's own counts (`tasks.gate.masked`).

The reference is GX applying the row condition itself: the same chunk validated with the
masking turned off. Cells vary as a month's can: nulls in the checked column and in the
condition's column, values outside the set inside and outside the condition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.data.generate import generate_snapshot
from tasks.gate import chunks
from tasks.gate.chunk_suite import chunk_suite
from tasks.gate.chunks import validate_chunk
from tasks.gate.masked import masked_expectations, masked_frame, unmasked
from tasks.gate.suite import DEFAULT_SUITE_PATH

ADDONS = ["OnlineSecurity", "StreamingTV", "InternetService", "PhoneService", "MultipleLines"]
CELLS = ["No", "Yes", "No internet service", "No phone service", "DSL", None]


@pytest.fixture(scope="module")
def month() -> pd.DataFrame:
    return generate_snapshot("2026-03", seed=7, rows=600)


def _reference(frame: pd.DataFrame, **kwargs: object) -> object:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(chunks, "masked_expectations", lambda expectations: {})
        return validate_chunk(frame, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 599), st.sampled_from(ADDONS), st.sampled_from(CELLS)),
        min_size=1,
        max_size=40,
    ),
    for_scoring=st.booleans(),
)
def test_masked_outcomes_are_gxs_own(
    month: pd.DataFrame,
    cells: list[tuple[int, str, str | None]],
    for_scoring: bool,
) -> None:
    frame = month.copy()
    for row, column, value in cells:
        frame.loc[row, column] = value if value is not None else np.nan
    masked = validate_chunk(frame, for_scoring=for_scoring)
    assert masked == _reference(frame, for_scoring=for_scoring)


def test_the_suites_in_set_conditions_are_masked_and_the_rest_left_as_written() -> None:
    suite = chunk_suite(DEFAULT_SUITE_PATH, False)
    masked = masked_expectations(suite.expectations)
    kinds = {suite.configs[i]["type"] for i in masked}
    conditioned = [
        i for i, c in enumerate(suite.configs) if (c.get("kwargs") or {}).get("row_condition")
    ]
    assert kinds == {"expect_column_values_to_be_in_set"} and len(masked) == 14
    # The column-pair rule (tenure > 0) is not null-blind per column: GX filters it itself.
    assert [suite.configs[i]["type"] for i in conditioned if i not in masked] == [
        "expect_column_pair_values_a_to_be_greater_than_b"
    ]
    item = masked[conditioned[1]]
    assert item.clause == "PhoneService == 'No'" and item.source == "MultipleLines"
    config = item.expectation.configuration.to_json_dict()
    assert "row_condition" not in config["kwargs"] and config["kwargs"]["column"] == item.column


def test_a_condition_the_chunk_cannot_evaluate_leaves_the_expectation_as_written(
    month: pd.DataFrame,
) -> None:
    suite = chunk_suite(DEFAULT_SUITE_PATH, False)
    masked = masked_expectations(suite.expectations)
    copies, outside = masked_frame(month.drop(columns=["InternetService"]), masked)
    on_internet = {i for i, m in masked.items() if "InternetService" in m.clause}
    assert on_internet and not on_internet & set(outside)
    assert set(outside) == set(masked) - on_internet - {
        i for i, m in masked.items() if m.source == "InternetService"
    }
    assert list(copies.columns) == [masked[i].column for i in outside]
    # Rows outside a condition are null in its copy and taken back out of GX's counts.
    phone = next(i for i, m in masked.items() if m.clause == "PhoneService == 'No'")
    assert outside[phone] == int((month["PhoneService"] != "No").sum())
    assert copies[masked[phone].column].isna().sum() == outside[phone]


def test_unmasked_takes_the_outside_rows_out_of_the_element_and_missing_counts() -> None:
    from tasks.gate.chunk_suite import Outcome

    outcome = Outcome(success=False, element_count=100, missing_count=70, unexpected_count=3)
    assert unmasked(outcome, 60) == Outcome(
        success=False, element_count=40, missing_count=10, unexpected_count=3
    )
    assert unmasked(Outcome(success=True), 5) == Outcome(success=True)
