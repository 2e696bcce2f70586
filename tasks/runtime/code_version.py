"""Which code decided: the checkout's git commit (and whether it had local changes), else the
installed package's version. A replay of a month compares it with the one its record holds."""

from __future__ import annotations

import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
#: A git that does not answer within this is no git: the version falls back to the package's.
_GIT_SECONDS = 5.0


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def code_version() -> str:
    """`git:<commit>` (`+local-changes` when tracked files differ from it), else
    `churn-retrain <version>` of the installed package."""
    commit = _git("rev-parse", "HEAD")
    if commit:
        changed = _git("status", "--porcelain", "--untracked-files=no")
        return f"git:{commit}" + ("+local-changes" if changed else "")
    try:
        return f"churn-retrain {metadata.version('churn-retrain')}"
    except metadata.PackageNotFoundError:
        return "unknown"
