"""Who owns a run: ``Owner(pid, start, host)`` and the one rule that says it is gone.

Container labels, execution records and crash recovery all ask this module; a reused pid
(same number, another kernel start time) is never mistaken for the owner that died.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


def process_status(pid: int) -> tuple[str, str] | None:
    """A process's state letter and kernel start time (as in /proc/PID/stat), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]


@dataclass(frozen=True)
class Owner:
    """The process that runs an execution: pid, the kernel's start time of that pid, host."""

    pid: int
    start: str
    host: str

    @classmethod
    def current(cls) -> Owner:
        """The running process."""
        pid = os.getpid()
        status = process_status(pid)
        return cls(pid, status[1] if status else "", socket.gethostname())

    def is_gone(self, hostname: str | None = None) -> bool:
        """Whether this process provably no longer runs (never true for another host).

        A pid that runs again but started at another time is a reused pid: the owner is gone.
        An owner recorded without a start time is judged by its pid alone.
        """
        if self.host != (hostname or socket.gethostname()):
            return False
        if self.pid <= 0:
            return True
        status = process_status(self.pid)
        if status is None or status[0] in ("Z", "X"):
            return True  # gone, or exited and waiting for its parent to reap it
        return bool(self.start) and status[1] != self.start
