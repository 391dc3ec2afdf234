"""Upkeep of the server's record store, in a thread of its own (never on the event loop).

SQLite's planner chooses indexes by the statistics ``ANALYZE`` keeps; they are written when the
schema is made or migrated, and go stale as the history grows (a plan made for a hundred
executions is not the one for a million). So the server refreshes them when it starts and every
:data:`ANALYZE_EVERY` after that: SQLite samples each index (``analysis_limit``), which takes
milliseconds at any size. PostgreSQL keeps its own statistics (autovacuum).
"""

from __future__ import annotations

import threading

import structlog

from executor.errors import ExecutorError
from executor.store.local import LocalRecords

log = structlog.get_logger(__name__)

ANALYZE_EVERY = 4 * 3600.0  # seconds


class Maintenance:
    """Refreshes the store's statistics now and every ``every`` seconds until stopped."""

    def __init__(self, records: LocalRecords, every: float = ANALYZE_EVERY) -> None:
        self.records = records
        self.every = every
        self.passes = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run_once(self) -> None:
        """Refresh the statistics once (errors are the caller's)."""
        with self.records.connect() as store:
            store.refresh_statistics()
        self.passes += 1

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except ExecutorError as exc:  # the store is busy or away: next time
                log.warning("refreshing the store's statistics failed", error=str(exc))
            except Exception:  # a bug must not stop the server
                log.exception("refreshing the store's statistics failed")
            self._stopping.wait(self.every)
