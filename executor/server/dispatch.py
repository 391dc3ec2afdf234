"""Server mode with a broker: queued executions go to workers on other hosts through Celery.

``executor server --broker redis://...`` replaces the in-process slots with one dispatcher
thread. It hands the oldest queued work to the broker, on the queue of the flow's
``workerGroup.key`` (``default`` when no task names one), and watches heartbeats: the runs of a
worker silent for longer than the lapse are marked FAILED ("worker lost") so that nothing stays
RUNNING forever; the broker's redelivery then starts them again as a new attempt.

Kills of executions that a worker runs are answered in that worker's next heartbeat.

The database, not the broker, is the record of queued work, so that losing the broker's messages
loses nothing: when Redis comes back as a new process (its ``run_id`` changed: restarted without
persistence, or failed over), every execution dispatched but not yet claimed is sent again; and
the runs of a lost worker, and every unclaimed execution (it may have held some), are sent
again at once, not after the broker's visibility timeout (their unacknowledged messages may be
gone with a restarted Redis, and the timeout is long: it stays the broker's own backstop).
A message sent twice is harmless: the claim runs it once and tells the other copy to wait, then
to drop. A server that just started gives workers one lapse to heartbeat before judging them:
they kept running while it was away.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import structlog

from executor.broker import DEFAULT_QUEUE, RUN_TASK, celery_app
from executor.errors import ExecutorError, UsageError
from executor.flow.base import worker_key
from executor.flow.loaded import LoadedFlow
from executor.flow.walk import walk
from executor.server.stored_flows import StoredFlows
from executor.store.db import Store
from executor.store.local import LocalRecords
from executor.store.queue import QueuedWork
from executor.store.workers import (
    dispatch_next,
    list_workers,
    mark_lapsed,
    queues_of,
    unclaimed,
)

log = structlog.get_logger(__name__)


def worker_group(loaded: LoadedFlow) -> str | None:
    """The ``workerGroup.key`` (or ``workerSelector``) the flow's tasks ask for (one execution
    runs on one worker).

    Raises:
        UsageError: two tasks ask for different worker groups.
    """
    keys: dict[str, str] = {}
    for visit in walk(loaded.flow):
        key = visit.task.worker_key
        if key:
            keys.setdefault(str(key), visit.task.id)
    if len(keys) > 1:
        named = ", ".join(f"{k!r} (task {t})" for k, t in keys.items())
        raise UsageError(
            f"tasks ask for different worker groups: {named}; an execution runs on one worker"
        )
    if not keys:
        return worker_key(None, loaded.flow.workerSelector)
    return next(iter(keys), None)


class BrokerDispatch:
    """Sends queued executions to the broker and marks the runs of lost workers.

    Args:
        records: the record database.
        flows: the server's stored flows (for ``workerGroup``).
        broker_url: ``redis://host:port/db``.
        lapse: silence after which a worker's runs are lost.
        home: the server's home (keeps the broker's last run id, to notice a restart).
    """

    def __init__(
        self,
        records: LocalRecords,
        flows: StoredFlows,
        broker_url: str,
        lapse: timedelta,
        home: Path,
    ) -> None:
        self.records = records
        self.flows = flows
        self.broker_url = broker_url
        self.lapse = lapse
        self.celery = celery_app(broker_url)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._kills: set[str] = set()
        self._started = time.monotonic()
        self._broker_id: str | None = None
        self._silent: set[str] = set()
        self._redis = redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=10)
        self._broker_id_file = home / "broker-run-id"

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()

    def wake(self) -> None:
        with self._lock:
            self._wake.notify()

    def judging_lapse(self) -> timedelta:
        """The lapse, plus what is left of the grace a just-started server gives its workers."""
        grace = self.lapse.total_seconds() - (time.monotonic() - self._started)
        return self.lapse + timedelta(seconds=max(grace, 0.0))

    def route(self, work: QueuedWork) -> str:
        """The broker queue of one execution."""
        try:
            loaded = self.flows.find(work.namespace, work.flow_id, work.revision)
            return worker_group(loaded) or DEFAULT_QUEUE
        except ExecutorError:  # checked at submit; a flow changed since goes to the default
            return DEFAULT_QUEUE

    # ----- kills, answered in heartbeats

    def request_kill(self, execution_id: str) -> None:
        with self._lock:
            self._kills.add(execution_id)

    def kills_among(self, running: list[str]) -> list[str]:
        """The executions of ``running`` that were asked to die (each said once)."""
        with self._lock:
            found = [eid for eid in running if eid in self._kills]
            self._kills.difference_update(found)
        return found

    # ----- the loop

    def _send(self, work: QueuedWork, queue: str) -> None:
        self._send_id(work.execution_id, queue)

    def _send_id(self, execution_id: str, queue: str) -> None:
        self.celery.send_task(RUN_TASK, args=[execution_id], queue=queue)

    def _broker_restarted(self) -> bool:
        """Whether Redis is another process than the one last seen (it may have lost messages).

        Raises:
            redis.RedisError: the broker does not answer.
        """
        run_id = str(self._redis.info("server")["run_id"])
        previous = self._broker_id
        if previous is None:  # this server just started: the Redis of its previous life?
            try:
                previous = self._broker_id_file.read_text().strip() or None
            except OSError:
                previous = None
        if run_id != self._broker_id:
            self._broker_id = run_id
            self._broker_id_file.write_text(run_id)
        return previous is not None and previous != run_id

    def _send_again(self, executions: list[tuple[str, str]]) -> None:
        for execution_id, queue in executions:
            self._send_id(execution_id, queue)

    def _check(self, store: Store) -> None:
        if self._broker_restarted():
            again = unclaimed(store)
            self._send_again(again)
            if again:
                log.warning(
                    "the broker restarted: unclaimed executions sent again", count=len(again)
                )
        while dispatch_next(store, self.route, self._send) is not None:
            pass
        if time.monotonic() - self._started < self.lapse.total_seconds():
            return  # workers heartbeat again to a server that just started: give them a lapse
        self._judge_workers(store)

    def _judge_workers(self, store: Store) -> None:
        lost = mark_lapsed(store, self.lapse)
        if lost:
            log.warning("runs of lost workers marked FAILED, sent again", executions=lost)
            self._send_again(queues_of(store, lost))
        # a worker that died may also have held messages it had not claimed yet (Celery takes
        # one ahead per slot): send every unclaimed execution again when a worker is lost
        now = datetime.now(UTC)
        silent = {w.info.name for w in list_workers(store) if now - w.last_seen > self.lapse}
        newly = silent - self._silent
        self._silent = silent
        if newly:
            again = unclaimed(store)
            self._send_again(again)
            log.warning("workers lost", workers=sorted(newly), unclaimed_sent_again=len(again))

    def _loop(self) -> None:
        check_every = max(self.lapse.total_seconds() / 3, 0.5)
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                with self.records.connect() as store:
                    self._check(store)
            except ExecutorError as exc:
                log.error("cannot read the queue", error=str(exc))
            except Exception as exc:  # the broker refused: the work stays queued, tried again
                log.error("cannot reach the broker", broker=self.broker_url, error=str(exc))
            with self._lock:
                if not self._stopping:
                    self._wake.wait(check_every)
