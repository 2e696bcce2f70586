"""A month's snapshot: loaded, parsed, typed and digested."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from tasks.data.schema import ID_COLUMN


@dataclass(frozen=True)
class Snapshot:
    """One month of customer rows and where they came from."""

    frame: pd.DataFrame
    source: str
    digest: str
    period: str

    @property
    def rows(self) -> int:
        return len(self.frame)

    def run_params(self) -> dict[str, str | int]:
        """What an MLflow run records about the data it was given."""
        return {"period": self.period, "data.source": self.source, "data.rows": self.rows}


def digest_frame(frame: pd.DataFrame) -> str:
    """A content digest that ignores column order and row index: same data, same digest.

    The row hashes are `pd.util.hash_pandas_object` of the frame with its columns sorted,
    combined here one column at a time as pandas combines them (CPython's tuple hash), so a
    big month is not copied into sorted order first; `tests/integration/test_data.py` checks they agree.
    """
    names = sorted(frame.columns)
    digest = hashlib.sha256(",".join(names).encode())
    digest.update(_combined_row_hashes(frame, names).tobytes())
    return f"sha256:{digest.hexdigest()[:32]}"


def _combined_row_hashes(frame: pd.DataFrame, names: list[str]) -> npt.NDArray[np.uint64]:
    rows = np.full(len(frame), 0x345678, dtype=np.uint64)
    if not names:
        return np.array([], dtype=np.uint64)
    multiplier = np.uint64(1000003)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as the hash intends
        for i, name in enumerate(names):
            values = frame[name]
            # Customer IDs are all distinct: hashing each beats factorizing them first (5x on
            # millions), and gives the same hashes when none is null (not so with nulls).
            distinct = name == ID_COLUMN and values.dtype == object and not values.isna().any()
            hashes = pd.util.hash_pandas_object(values, index=False, categorize=not distinct)
            rows ^= hashes.to_numpy()
            rows *= multiplier
            multiplier += np.uint64(82520 + 2 * (len(names) - i))
        rows += np.uint64(97531)
    return rows
