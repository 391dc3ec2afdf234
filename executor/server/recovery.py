"""Recovery of a live server: no execution stays RUNNING because its runner is gone.

Crash recovery at start (``Store.recover_dead``) ends what a dead process left; a live server
also loses runners: a run whose store went away for longer than the recorder's patience ends
without its final state written, and its record says RUNNING. Every
``recovery_interval_seconds`` this ends FAILED every execution recorded as run by this server
that none of its runners holds, and what dead processes of this host left.

``run.cancel.runner_gone`` is the one rule, shared with ``app.kill_execution``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import structlog

from executor.errors import ExecutorError
from executor.host import Owner
from executor.model import State
from executor.run.cancel import Running, runner_gone
from executor.settings import Settings
from executor.store.flow_events import note_ended_now
from executor.store.local import LocalRecords
from executor.store.records import ts

log = structlog.get_logger(__name__)

LOST_RUNNER_REASON = "its runner in the server ended without recording its end"


class Recovery:
    """A thread that ends FAILED, every interval, the executions whose runner is gone.

    Args:
        settings: the interval, the recorders' longest wait.
        records: the record database.
        owner: this process, as its runs are recorded.
        running: what this process runs now.
        stopped: set when the server stops (the thread ends).
    """

    def __init__(
        self,
        settings: Settings,
        records: LocalRecords,
        owner: Owner,
        running: Running,
        stopped: threading.Event,
    ) -> None:
        self.settings = settings
        self.records = records
        self.owner = owner
        self.running = running
        self.stopped = stopped
        self._suspects: dict[str, float] = {}  # seen without a runner since (monotonic)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="recovery", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self.stopped.wait(self.settings.recovery_interval_seconds):
            try:
                self.look()
            except ExecutorError as exc:  # the store is away: the next look will tell
                log.error("cannot look for executions whose runner is gone", error=str(exc))

    def look(self) -> list[str]:
        """End FAILED what has no runner any more; the ids ended.

        A record of this server seen without a runner is ended only when it is still so a
        while later (twice the longest wait of a recorder for the store, and a second): the
        moment between a slot taking work and registering it, or a subflow's last records on
        their way to a store that just came back, are never mistaken for a lost run.
        """
        grace = 2 * self.settings.store_retry_wait_seconds + 1.0
        with self.records.connect() as store:
            ended = store.recover_dead()
            lost = set(store.unfinished_of(self.owner)) - set(self.running.ids())
            seen = time.monotonic()
            self._suspects = {e: self._suspects.get(e, seen) for e in lost}
            for execution_id, since in sorted(self._suspects.items()):
                if seen - since < grace:
                    continue
                if not runner_gone(self.owner, self.owner, self.running, execution_id):
                    continue
                note = (
                    f"{LOST_RUNNER_REASON} (its records could not all be written: see the"
                    " server's log); execution marked FAILED"
                )
                if store.end_lost(execution_id, State.FAILED, LOST_RUNNER_REASON, note):
                    ended.append(execution_id)
            for execution_id in ended:  # Flow triggers look at these ends too
                note_ended_now(store, execution_id, ts(datetime.now(UTC)))
        if ended:
            log.warning("executions whose runner is gone marked FAILED", executions=ended)
        return ended
