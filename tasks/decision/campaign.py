"""The campaign per customer: what keeping each one is worth, and what contacting them is expected
to bring. Pure functions of a frame and the rule's `Campaign`; no I/O.

The value of a customer is a number or a small arithmetic expression of the snapshot's numeric
columns (`12 * MonthlyCharges`). It is parsed with `ast` and evaluated here on numpy arrays:
only numbers, those column names, + - * / ** and parentheses are accepted, so an expression
typed into the Prefect form can compute a value and nothing else.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

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
