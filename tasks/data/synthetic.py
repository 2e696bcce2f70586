"""The generated month as a source: `generated:2026-03?seed=42&rows=7043[&scenario=...&drift=...]`,
the location `locate` writes for `data: generated` (tasks/data/generate.py makes the rows)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pandas as pd

from tasks.data.source import Location, ReadLimits, Source


class GeneratedSource(Source):
    """Generated Telco-shaped months (never read for a scheduled run: it needs `generated`)."""

    def read(self, location: Location, limits: ReadLimits) -> pd.DataFrame:
        from tasks.data.generate import generate_snapshot

        query = parse_qs(location.text.partition("?")[2])

        def value(name: str, default: str) -> str:
            return query.get(name, [default])[0]

        return generate_snapshot(
            location.period,
            seed=int(value("seed", "0")),
            rows=int(value("rows", "7043")),
            drift=float(value("drift", "0")),
            scenario=value("scenario", "none"),
        )
