"""What the kernel says about a local process (no dependencies: used by engine/ and store/)."""

from __future__ import annotations

from pathlib import Path


def process_status(pid: int) -> tuple[str, str] | None:
    """A process's state letter and kernel start time (as in /proc/PID/stat), or None if gone.

    The start time tells a live owner from a later process that reused its pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]
