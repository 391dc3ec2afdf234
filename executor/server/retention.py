"""The server's retention: every interval, executions that ended longer ago than the retention
are purged with their task runs, log lines and stored files (``executor.store.purge``).

A thread of its own, never the event loop: a first pass at start, then one every
``retention_interval`` seconds. Each pass works in short batches, so the executions running
meanwhile keep writing; what it removed is logged.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import structlog

from executor.errors import ExecutorError
from executor.store.local import LocalServices
from executor.store.purge import ExecutionSelection, PurgeCounts, PurgeParts

log = structlog.get_logger(__name__)

STOP_WAIT_SECONDS = 10.0  # a pass cut short by a stop is finished by the next server's


class Retention:
    """A thread that purges what ended longer ago than ``keep``, every ``interval`` seconds.

    Args:
        stores: the server's stores (records and artifacts).
        keep: how long ended executions are kept.
        interval: seconds between two passes.
    """

    def __init__(self, stores: LocalServices, keep: timedelta, interval: float) -> None:
        self.stores = stores
        self.keep = keep
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.apply(datetime.now(UTC))
            except ExecutorError as exc:  # the store is away: the next pass will try again
                log.error("retention pass failed", error=str(exc))
            except Exception:  # a bug must not end retention for good
                log.exception("retention pass failed")
            self._stopping.wait(self.interval)

    def apply(self, now: datetime) -> PurgeCounts:
        """Purge what ended before ``now`` minus the retention; what went.

        Raises:
            StoreError: the store cannot be read or written (batches done stay done).
        """
        before = now - self.keep
        counts = self.stores.records.purge(
            ExecutionSelection(ended_before=before), PurgeParts(), self.stores.artifacts
        )
        if counts.executions:
            log.info(
                "retention purged executions",
                executions=counts.executions,
                log_lines=counts.logs,
                files=counts.files,
                ended_before=before.isoformat(timespec="seconds"),
            )
        return counts
