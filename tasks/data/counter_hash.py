"""Counter-based hashing: the same key gives the same draw, whatever else was drawn."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def stream_key(seed: int, stream: int, salt: int = 0) -> int:
    """A 64-bit key for (seed, stream, salt), mixed in Python ints to avoid scalar overflow."""
    x = (seed * GOLDEN + stream * 0xD1B54A32D192ED03 + salt * 0x8CB92BA72F3D8DD7) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def hash_below(keys: NDArray[np.int64], stream_key: int, bound: int) -> NDArray[np.int64]:
    """Hash values reduced to [0, bound), as int64 so they mix with signed arithmetic."""
    return (hash_keys(keys, stream_key) % np.uint64(bound)).astype(np.int64)


def hash_keys(keys: NDArray[np.int64], stream_key: int) -> NDArray[np.uint64]:
    """splitmix64 of each key offset by a stream key (uint64 arithmetic wraps, as intended)."""
    x = keys.astype(np.int64).view(np.uint64) * np.uint64(GOLDEN) + np.uint64(stream_key)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class CounterDraws:
    """Counter-based random numbers: value = hash(seed, stream, salt, key), no hidden state."""

    def __init__(self, seed: int, keys: NDArray[np.int64]) -> None:
        self.seed = seed
        self.keys = keys

    def uniform(self, stream: int, salt: int = 0) -> NDArray[np.float64]:
        """Uniforms in [0, 1), one per key."""
        bits = hash_keys(self.keys, stream_key(self.seed, stream, salt))
        return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def normal(self, stream_1: int, stream_2: int) -> NDArray[np.float64]:
        """Standard normals by Box-Muller from two streams."""
        u1 = 1.0 - self.uniform(stream_1)  # in (0, 1], so the log is finite
        u2 = self.uniform(stream_2)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
