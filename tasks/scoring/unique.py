"""Customer IDs checked for repeats across a scored base's batches, in 8 bytes a customer."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Hashes are kept in buckets by their top 4 bits: the check sorts one bucket at a time
#: (1/16 of the base), never a copy of them all beside them.
_BUCKET_BITS = 4


class SeenIds:
    """The 64-bit hashes of every customer ID added (the gate's hash for unique columns), by
    bucket: small, picklable, no ID values. 100M customers: 0.8 GB (their IDs as text: ~1.5 GB,
    and several more to count the distinct ones)."""

    def __init__(self) -> None:
        self._buckets: list[list[np.ndarray]] = [[] for _ in range(1 << _BUCKET_BITS)]
        self.rows = 0

    def add(self, ids: pd.Series) -> None:
        """Take one batch's IDs."""
        hashes = pd.util.hash_pandas_object(ids, index=False).to_numpy()
        bucket = (hashes >> np.uint64(64 - _BUCKET_BITS)).astype(np.intp)
        order = np.argsort(bucket, kind="stable")
        counts = np.bincount(bucket, minlength=len(self._buckets))
        for i, part in enumerate(np.split(hashes[order], np.cumsum(counts)[:-1])):
            if part.size:
                self._buckets[i].append(part)
        self.rows += len(ids)

    @classmethod
    def merged(cls, parts: Iterable[SeenIds]) -> SeenIds:
        """The IDs of every part (partitions of one base)."""
        whole = cls()
        for part in parts:
            for mine, theirs in zip(whole._buckets, part._buckets, strict=True):
                mine.extend(theirs)
            whole.rows += part.rows
        return whole

    def repeated(self) -> int:
        """How many rows share their ID with another row (0: every customer once)."""
        shared = 0
        for i, parts in enumerate(self._buckets):
            if not parts:
                continue
            every = np.concatenate(parts)
            self._buckets[i] = [every]  # one array per bucket, not its parts beside it
            every.sort()
            if every.size > 1 and (every[1:] == every[:-1]).any():
                _, counts = np.unique(every, return_counts=True)
                shared += int(counts[counts > 1].sum())
        return shared
