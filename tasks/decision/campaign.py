"""The retention campaign: whom the team can contact (`Campaign`, part of the rule), what keeping
each customer is worth, and what contacting them is expected to bring. Pure; no I/O.

The value of a customer is a number or a small arithmetic expression of the snapshot's numeric
columns (`12 * MonthlyCharges`). It is parsed with `ast` and evaluated here on numpy arrays:
only numbers, those column names, + - * / ** and parentheses are accepted, so an expression
typed into the Prefect form can compute a value and nothing else.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.data.schema import NUMERIC_COLUMNS

Array = npt.NDArray[np.float64]

_OPERATORS: dict[type, Callable[[Array, Array], Array]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _parse(expression: str) -> ast.expr:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"customer_value {expression!r} is not an arithmetic expression") from None
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Name) and node.id not in NUMERIC_COLUMNS:
            raise ValueError(
                f"customer_value names {node.id!r}, not a numeric column "
                f"({', '.join(NUMERIC_COLUMNS)})"
            )
        allowed = (ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.USub, ast.UAdd, *_OPERATORS)
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise ValueError(f"customer_value {expression!r}: only numbers and columns")
        elif not isinstance(node, allowed):
            raise ValueError(
                f"customer_value {expression!r}: only numbers, numeric columns, + - * / ** "
                f"and parentheses are allowed (found {type(node).__name__})"
            )
    return tree.body


def _evaluate(node: ast.expr, columns: dict[str, Array]) -> Array:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # `_parse` allows numbers only
        return np.asarray(float(node.value))
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, columns)
        return -value if isinstance(node.op, ast.USub) else value
    assert isinstance(node, ast.BinOp)
    left, right = _evaluate(node.left, columns), _evaluate(node.right, columns)
    with np.errstate(all="ignore"):  # a division by a zero column is a row without a value
        return _OPERATORS[type(node.op)](left, right)


def check_value_expression(expression: str) -> None:
    """Raise `ValueError` naming the problem if `expression` cannot give a customer's value."""
    _evaluate(_parse(expression), {c: np.ones(1) for c in NUMERIC_COLUMNS})


def customer_values(expression: str, frame: pd.DataFrame) -> tuple[Array, int]:
    """The value of keeping each row's customer, and how many rows had none (counted as 0)."""
    body = _parse(expression)
    names = {n.id for n in ast.walk(body) if isinstance(n, ast.Name)}
    columns = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(float) for c in names}
    values = np.broadcast_to(_evaluate(body, columns), (len(frame),)).astype(float)
    missing = ~np.isfinite(values)
    return np.where(missing, 0.0, values), int(missing.sum())


def expected_value(
    proba: npt.ArrayLike, values: Array, *, save_rate: float, contact_cost: float
) -> Array:
    """What contacting each customer is expected to bring: P(churn) x save rate x value - cost."""
    return np.asarray(proba, dtype=float) * save_rate * values - contact_cost


class Campaign(BaseModel):
    """Whom the retention team contacts each month, and what keeping a customer is worth.

    The `*_at_capacity` metrics judge the list a model would have the team call: its riskiest
    `capacity` of the scored customers. Scoring flags that list (`contact`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    capacity: float = Field(
        default=0.10,
        gt=0.0,
        le=1.0,
        description="Share of the scored customers the team contacts, riskiest first "
        "(0.10: the top 10%).",
    )
    customers: int | None = Field(
        default=None,
        ge=1,
        le=10**10,
        description="How many customers the team contacts, instead of `capacity`. A holdout "
        "is judged at the same share of the month's customers. Empty: use `capacity`.",
    )
    save_rate: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Share of contacted churners the campaign keeps.",
    )
    contact_cost: float = Field(
        default=15.0,
        ge=0.0,
        le=1e6,
        description="Cost of contacting one customer (the call and the offer), in the unit "
        "of `customer_value`.",
    )
    customer_value: str = Field(
        default="12 * MonthlyCharges",
        min_length=1,
        max_length=200,
        description="Value of keeping a customer: a number, or an arithmetic expression of "
        "the snapshot's numeric columns (+ - * / and parentheses; a year of charges by "
        "default). A row whose value cannot be computed counts as 0.",
    )

    @field_validator("customer_value")
    @classmethod
    def _computable(cls, value: str) -> str:
        check_value_expression(value)
        return value

    def share(self, population: int) -> float:
        """The share of a base of `population` customers the team contacts."""
        if self.customers is None:
            return self.capacity
        return min(1.0, self.customers / max(population, 1))

    def contacts(self, rows: int, population: int | None = None) -> int:
        """How many of `rows` scored customers are on the list (at least one).

        `population` is the month's size when `rows` is a sample of it (a holdout): the list
        is then the same share of the sample as `customers` is of the month.
        """
        share = self.share(rows if population is None else population)
        return max(1, min(rows, math.floor(share * rows + 0.5)))

    def describe(self) -> str:
        who = f"{self.customers:,} customers" if self.customers else f"top {self.capacity:.0%}"
        return (
            f"{who}, save rate {self.save_rate:g}, contact cost {self.contact_cost:g}, "
            f"value {self.customer_value}"
        )
