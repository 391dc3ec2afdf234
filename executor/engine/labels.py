"""Labels that prove a container, volume or network is ours, and who owns it; and image labels."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

from executor.process import process_status

PREFIX = "io.executor"
MANAGED = f"{PREFIX}.managed"
EXECUTION = f"{PREFIX}.execution-id"
TASK = f"{PREFIX}.task-id"
OWNER_HOST = f"{PREFIX}.owner-host"
OWNER_PID = f"{PREFIX}.owner-pid"
OWNER_START = f"{PREFIX}.owner-start"
CREATED = f"{PREFIX}.created"
# On a built image: the hash of its inputs, so another EXECUTOR_HOME can adopt it.
INPUT_HASH = f"{PREFIX}.input-hash"


def process_start_ticks(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (so a reused pid is not mistaken for its owner)."""
    status = process_status(pid)
    return status[1] if status else None


def ownership(execution_id: str, task_id: str | None = None) -> dict[str, str]:
    """The labels every resource of one execution carries."""
    pid = os.getpid()
    labels = {
        MANAGED: "true",
        EXECUTION: execution_id,
        OWNER_HOST: socket.gethostname(),
        OWNER_PID: str(pid),
        OWNER_START: process_start_ticks(pid) or "",
        CREATED: f"{time.time():.3f}",
    }
    if task_id:
        labels[TASK] = task_id
    return labels


def owner_is_gone(labels: Mapping[str, str], hostname: str | None = None) -> bool:
    """Whether the process that created a resource provably no longer runs.

    A resource made on another host is never claimed: we cannot see its owner.
    """
    if labels.get(OWNER_HOST) != (hostname or socket.gethostname()):
        return False
    try:
        pid = int(labels.get(OWNER_PID, ""))
    except ValueError:
        return True
    start = process_start_ticks(pid)
    if start is None:
        return True
    recorded = labels.get(OWNER_START)
    return bool(recorded) and recorded != start
