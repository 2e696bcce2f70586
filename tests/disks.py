"""Small real file systems for fault tests: a tmpfs to fill, where this machine lets a test
mount one (as root); else the test is skipped and says why."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def mount(*args: str) -> None:
    """`mount ARGS`, or skip the test naming why it cannot."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()[:100]})")


@contextmanager
def small_disk(where: Path, size: str = "256m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (made if missing), unmounted after."""
    where.mkdir(parents=True, exist_ok=True)
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`; the filler file (delete it to free the disk)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: closing it writes nothing
        for block in (1 << 20, 4096):  # megabytes, then the last partial one
            try:
                while True:
                    out.write(b"\0" * block)
            except OSError:
                pass
    return filler
