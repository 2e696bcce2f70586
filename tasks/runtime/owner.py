"""Which process owns a run, and whether it is gone: for runs left RUNNING by a killed process.

A run (an MLflow run, a flow run on the CLI's own Prefect server) records its owner: the host,
the boot of that host, the process id and the process's start time. The owner is gone when the
record was made on this host (same host name) and either the host booted since (another boot
id), or no process has that pid, or the process with that pid started at another time (the pid
was reused). A record from another host is never judged: its process cannot be seen from here.
Pure standard library; no MLflow, no Prefect.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), "" elsewhere, None if none.

    A zombie counts as gone: it has exited and only waits for its parent to reap it.
    """
    if not sys.platform.startswith("linux"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""
        return ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of proc(5): starttime


@dataclass(frozen=True)
class Owner:
    """A process, named so that another process on the same host can tell it is gone."""

    host: str
    boot: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, _start_ticks(pid) or "")

    def text(self) -> str:
        """`host/boot/pid/started`, the form kept in a tag."""
        return f"{self.host}/{self.boot}/{self.pid}/{self.started}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        parts = text.rsplit("/", 3)
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def is_gone(self) -> bool:
        """True only when this host can tell for sure that the process no longer runs."""
        if self.host != socket.gethostname():
            return False  # another machine (or container): not ours to judge
        if self.boot and _boot_id() and self.boot != _boot_id():
            return True  # the host rebooted since
        started = _start_ticks(self.pid)
        if started is None:
            return True
        return bool(self.started and started and started != self.started)  # pid reused
