"""What the data gate's own parts cost on a large month, side by side in one process.

Prints, for a generated snapshot of ROWS rows (default 1,000,000; `--rows` to change):
- the parse guards (decode + layout scan) against pandas' own read of the same text, as a ratio;
- the drift profile of the training split and the PSI comparison of the full snapshot.
Each figure is the best of `--repeat` runs (the machine is shared: take ratios, not seconds).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import pandas as pd

from tasks.data.generate import generate_snapshot
from tasks.data.parse import check_csv_layout, decode_snapshot, parse_snapshot
from tasks.gate.drift import compare_with_profile, profile_frame
from tasks.gate.thresholds import DriftThresholds


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    frame = generate_snapshot("2026-01", rows=args.rows)
    payload = frame.to_csv(index=False).encode()
    text = payload.decode()
    print(f"snapshot: {args.rows:,} rows, {len(payload) / 1e6:.1f} MB of CSV")

    guards = _best(
        lambda: check_csv_layout(decode_snapshot(payload, source="bench"), source="bench"),
        args.repeat,
    )
    pandas_read = _best(
        lambda: pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""]),
        args.repeat,
    )
    full = _best(lambda: parse_snapshot(payload, source="bench"), args.repeat)
    print(f"parse guards         {guards:6.2f} s")
    print(f"pandas read_csv      {pandas_read:6.2f} s")
    print(f"parse_snapshot       {full:6.2f} s  (guards + read + type coercion)")
    print(f"guards / pandas read {guards / pandas_read:6.2f}x")

    train = frame.sample(frac=0.8, random_state=0)
    profile_s = _best(lambda: profile_frame(train), args.repeat)
    profile = profile_frame(train)
    compare_s = _best(
        lambda: compare_with_profile(frame, profile, DriftThresholds(), source="bench"),
        args.repeat,
    )
    print(f"drift profile        {profile_s:6.2f} s  ({len(train):,} training rows)")
    print(f"drift comparison     {compare_s:6.2f} s  ({len(frame):,} rows, 19 columns)")
    print(f"profile JSON         {len(profile.model_dump_json()):,} bytes")


if __name__ == "__main__":
    main()
