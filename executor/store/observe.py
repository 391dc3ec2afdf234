"""What the server's health and metrics endpoints read from the store: cheap, bounded queries.

``ping`` answers whether the store can be used at all (a readiness check); ``queued`` counts the
executions waiting to start and dates the oldest. Both run on a connection with a short timeout,
so a database that stopped answering makes them fail soon rather than hang a probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from executor.model import State
from executor.store.db import Store
from executor.store.records import parse_ts


@dataclass(frozen=True)
class QueueStats:
    """Executions recorded QUEUED (waiting for a slot or a worker), and the oldest one's date."""

    depth: int
    oldest: datetime | None


def ping(path: Path | str, timeout: float) -> dict[str, Any]:
    """Connect and run one query, waiting at most about ``timeout`` seconds for each.

    Returns:
        Details for a readiness answer: the database kind and where it is (no password).

    Raises:
        StoreError: the store cannot be reached or used.
    """
    with Store(path, busy_timeout=timeout, migrate=False) as store:
        store.read("SELECT 1")
        kind = "sqlite" if store.where.is_sqlite else "postgresql"
        return {"database": kind, "location": str(store.where)}


def queued(store: Store) -> QueueStats:
    """How many executions wait to start, and since when the oldest does (one indexed query)."""
    rows = store.read(
        "SELECT COUNT(*), MIN(start_date) FROM executions WHERE state = ?", (State.QUEUED.value,)
    )
    depth, oldest = rows[0] if rows else (0, None)
    return QueueStats(int(depth or 0), parse_ts(oldest) if oldest else None)
