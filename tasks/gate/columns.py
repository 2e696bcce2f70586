"""How a frame's columns differ from the suite's: the missing ones, and the unexpected ones by
name (a header row's names, not data), unless the header row itself looks like data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tasks.messages import join_words, normalise_name, plural

#: Unexpected column names listed, at most, and the characters shown of each.
_NAMES_SHOWN = 5
_NAME_CHARS = 40


def describe_column_mismatch(kwargs: Mapping[str, Any], columns: Sequence[str]) -> str:
    """What differs between the suite's column set (`kwargs`) and the frame's `columns`."""
    expected = list(kwargs["column_set"])
    present = [str(c) for c in columns]
    if expected and not set(expected) & set(present):
        # A file without a header row turns its first customer into column names: not quoted.
        return f"no header row? none of the {len(expected)} expected columns is present"
    missing = [c for c in expected if c not in present]
    # Without an exact match (a base to score, which may bring the target or not) other
    # columns are allowed, so they are not reported.
    exact = kwargs.get("exact_match")
    extra = [c for c in present if c not in expected] if exact is None or exact else []
    parts = []
    if missing:
        parts.append(
            f"missing {'column' if len(missing) == 1 else 'columns'} {join_words(missing)}"
        )
    if extra:
        parts.append(_describe_extra(extra, expected))
    return "; ".join(parts) or "columns differ from the expected set"


def _describe_extra(extra: Sequence[str], expected: Sequence[str]) -> str:
    """The unexpected columns named (a header row's names, not data), a respelling of an
    expected column pointed out; the first few only, long names cut."""
    wanted = {normalise_name(c): c for c in expected}
    renamed = [name for name in extra if normalise_name(name) in wanted]
    others = [name for name in extra if normalise_name(name) not in wanted]
    text = plural(len(extra), "unexpected column")
    if others:
        shown = [repr(_cut(name)) for name in others[:_NAMES_SHOWN]]
        more = len(others) - len(shown)
        text += ": " + join_words(shown) + (f" and {more} more" if more else "")
    if renamed:
        hints = [f"{_cut(name)!r} looks like {wanted[normalise_name(name)]}" for name in renamed]
        text += f" ({'; '.join(hints[:_NAMES_SHOWN])})"
    return text


def _cut(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"
