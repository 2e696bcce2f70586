"""Adding a kind of source is one module and one registry entry: JSON Lines, defined and registered
here, read by the real load task with nothing else in the project changed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tasks.data import source as registry
from tasks.data.fetch import fetch_bytes
from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.parse import coerce_types
from tasks.data.request import SnapshotRequest, SourceOptions
from tasks.data.schema import COLUMNS
from tasks.data.source import Location, ReadLimits, Source, register_source
from tasks.errors import DataSourceMisconfigured, SnapshotRejected

PERIOD = "2026-03"


class JsonLinesSource(Source):
    """One JSON object per line, any place `fetch_bytes` reads (a path, s3://, https://)."""

    def read(self, location: Location, limits: ReadLimits) -> pd.DataFrame:
        payload = fetch_bytes(
            location.text,
            shown=location.shown,
            deadline=limits.deadline,
            max_bytes=limits.max_bytes,
        )
        try:
            frame = pd.read_json(io.BytesIO(payload), lines=True, dtype=False)
        except ValueError:
            raise SnapshotRejected(f"Snapshot {location.shown}: not JSON Lines") from None
        missing = [c for c in COLUMNS if c not in frame]
        if missing:
            raise SnapshotRejected(f"Snapshot {location.shown}: missing {', '.join(missing)}")
        return coerce_types(frame[list(COLUMNS)].astype(str).replace({"nan": None}))


@pytest.fixture
def json_lines() -> Iterator[None]:
    saved = (dict(registry._REGISTRY), dict(registry._EXTENSIONS))
    register_source(JsonLinesSource(), formats=("jsonl",), extensions=(".jsonl",))
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._EXTENSIONS.clear()
    registry._EXTENSIONS.update(saved[1])


@pytest.mark.usefixtures("json_lines")
def test_a_registered_source_reads_its_format_as_the_csv_source_reads_csv(
    tmp_path: Path,
) -> None:
    month = generate_snapshot(PERIOD, rows=400)
    month.to_csv(tmp_path / f"{PERIOD}.csv", index=False)
    month.to_json(tmp_path / f"{PERIOD}.jsonl", orient="records", lines=True)

    as_csv = load_snapshot.fn(SnapshotRequest(str(tmp_path / "{period}.csv"), PERIOD))
    as_json = load_snapshot.fn(SnapshotRequest(str(tmp_path / "{period}.jsonl"), PERIOD))
    # The same rows in the same customer order: the same digest, so the same decision.
    assert as_json.digest == as_csv.digest and as_json.rows == 400
    pd.testing.assert_frame_equal(as_json.frame, as_csv.frame)
    # Named by the format option too, whatever the file is called.
    (tmp_path / "delivery.txt").write_bytes((tmp_path / f"{PERIOD}.jsonl").read_bytes())
    forced = SourceOptions(format="jsonl")
    named = load_snapshot.fn(
        SnapshotRequest(str(tmp_path / "delivery.txt"), PERIOD, options=forced)
    )
    assert named.digest == as_csv.digest


def test_an_unknown_format_is_named_with_the_known_ones(tmp_path: Path) -> None:
    options = SourceOptions(format="jsonl")
    with pytest.raises(DataSourceMisconfigured, match=r"no source reads format 'jsonl'.*csv"):
        load_snapshot.fn(SnapshotRequest(str(tmp_path / "m.jsonl"), PERIOD, options=options))
