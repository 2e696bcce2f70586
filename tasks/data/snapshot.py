"""A month's snapshot: loaded, parsed, typed and digested."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd


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
    """A content digest that ignores column order and row index: same data, same digest."""
    ordered = frame[sorted(frame.columns)]
    hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    digest = hashlib.sha256(",".join(ordered.columns).encode())
    digest.update(hashes.tobytes())
    return f"sha256:{digest.hexdigest()[:32]}"
