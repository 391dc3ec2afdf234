"""Labels that prove a container, volume or network is ours, and who owns it; and image labels."""

from __future__ import annotations

import time
from collections.abc import Mapping

from executor.host import Owner

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


def ownership(execution_id: str, task_id: str | None = None) -> dict[str, str]:
    """The labels every resource of one execution carries."""
    owner = Owner.current()
    labels = {
        MANAGED: "true",
        EXECUTION: execution_id,
        OWNER_HOST: owner.host,
        OWNER_PID: str(owner.pid),
        OWNER_START: owner.start,
        CREATED: f"{time.time():.3f}",
    }
    if task_id:
        labels[TASK] = task_id
    return labels


def owner_is_gone(labels: Mapping[str, str], hostname: str | None = None) -> bool:
    """Whether the process that created a resource provably no longer runs (see ``Owner``).

    A resource made on another host is never claimed: we cannot see its owner.
    """
    try:
        pid = int(labels.get(OWNER_PID, ""))
    except ValueError:
        pid = 0
    owner = Owner(pid, labels.get(OWNER_START, ""), labels.get(OWNER_HOST, ""))
    return owner.is_gone(hostname)
