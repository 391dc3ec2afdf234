"""A run listener that records an execution in the store as it happens.

The runner calls the listener on its main thread, once per log line among other things, so the
listener must be cheap: it takes a snapshot of what changed (masked) and hands it to a writer
thread with its own connection. The writer takes everything waiting, writes it in one
transaction and commits, so lines reach the database within milliseconds when the task is
quiet and in large batches when it is loud. A bounded backlog keeps memory flat: when the writer
falls behind, the runner waits for it rather than piling lines up in memory.

A store that cannot be reached for a while (PostgreSQL restarting, a lock held by another
process) is waited for (``StoreRetry``): the writer tries the same batch again with backoff until
the store is back, so nothing is lost and the final state is written, in order; the run goes on
meanwhile (until the backlog is full). Past the retry's patience, or for a failure that will not
go away by itself, the recorder keeps only the states and reports what it could not write.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from executor.errors import StoreError, StoreUnavailable
from executor.host import Owner
from executor.model import Execution, Level, LogBatch, LogLine, State, TaskRun
from executor.store.api import RecordSink, RecordStore
from executor.store.records import (
    ExecutionRecord,
    TaskRunRecord,
    Write,
    execution_record,
    task_run_record,
)

log = structlog.get_logger(__name__)

MAX_BATCH = 20_000
MAX_BACKLOG = 50_000
_STOP = object()


@dataclass(frozen=True)
class StoreRetry:
    """How long and how often a recorder tries again while the store cannot be reached.

    Attributes:
        patience: seconds an outage is waited for (from its first failed write).
        max_wait: the longest wait between tries (they start at a quarter of a second, doubling).
        give_up: set to stop waiting at once (a server that stops).
    """

    patience: float
    max_wait: float = 10.0
    give_up: threading.Event = field(default_factory=threading.Event, compare=False)

    def pause(self, seconds: float) -> None:
        """Wait between tries; cut short by ``give_up``."""
        self.give_up.wait(seconds)


class _Flush:
    """A marker in the queue: its event is set once everything before it is written."""

    def __init__(self, written: threading.Event) -> None:
        self.written = written


def _unmasked(value: Any) -> Any:
    return value


class Recorder:
    """Writes executions, task runs (with attempts) and log lines to the store.

    Args:
        records: where the records go: its ``writer()`` is opened in the writer thread (the
            record database of this host, or the server for a worker's run).
        mask: hides secrets in a value (strings inside dicts and lists too); ``Secrets.mask_value``.
        owner: the process recorded as running the execution (default: this one).
        max_backlog: snapshots waiting for the writer beyond which the caller waits.
        retry: how to wait for a store that cannot be reached (``None``: give up at once).

    Use it as a context manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        records: RecordStore,
        *,
        mask: Callable[[Any], Any] | None = None,
        owner: Owner | None = None,
        max_backlog: int = MAX_BACKLOG,
        retry: StoreRetry | None = None,
    ) -> None:
        self.where = records.where
        self.mask = mask or _unmasked
        self.owner = owner or Owner.current()
        self.max_backlog = max_backlog
        self._open_sink: Callable[[], RecordSink] = records.writer
        self.retry = retry
        self._sink: RecordSink | None = None
        self._outage_since: float | None = None  # monotonic time of the first failed try
        self.error: StoreError | None = None
        self.recorded: set[str] = set()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued_lines = 0  # lines in the batches waiting (a batch is one queue item)
        self._lines_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._positions: dict[str, int] = {}
        self._images: dict[str, dict[str, str]] = {}
        self._since_check = 0
        self._dropped = 0
        self._state_recorded = True  # the latest execution snapshot given is in the store

    # ----- lifecycle

    def start(self) -> Recorder:
        """Start the writer thread once its connection is open.

        Raises:
            StoreError: the store cannot be opened.
        """
        self._thread = threading.Thread(
            target=self._write_loop, name="executor-recorder", daemon=True
        )
        self._thread.start()
        while not self._ready.wait(0.5):
            if not self._thread.is_alive():  # died before saying it was ready: a bug, but no hang
                raise StoreError(f"the record store {self.where} could not be opened")
        if self.error is not None:
            raise self.error
        return self

    def finish(self) -> StoreError | None:
        """Write everything still waiting and stop the writer.

        Returns:
            ``None`` when everything was recorded, else the problem (for the caller to report
            after its own output).
        """
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self.error is None:
            return None
        ending = (
            "its final state is recorded"
            if self._state_recorded
            else "it may show the run RUNNING, then FAILED as if the executor died"
        )
        return StoreError(
            f"{self.error.message}; the record of this run is incomplete"
            f" ({self._dropped} update(s) and line(s) not written; {ending})"
        )

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything handed over so far is written (``log.Fetch`` reads it back)."""
        if self._thread is None or not self._thread.is_alive():
            return
        written = threading.Event()
        self._queue.put(_Flush(written))
        written.wait(timeout)

    def close(self) -> None:
        """Write everything still waiting and stop the writer.

        Raises:
            StoreError: some of the record could not be written.
        """
        problem = self.finish()
        if problem is not None:
            raise problem

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except StoreError as problem:  # the run's own exception matters more
            log.error("the record store failed", error=problem.message)

    # ----- RunListener

    def execution_changed(self, execution: Execution) -> None:
        """Snapshot the execution row (state, history, images, masked inputs and reason)."""
        self.recorded.add(execution.id)
        self._images[execution.id] = dict(execution.images)
        self._put(
            execution_record(
                execution,
                self.owner,
                inputs=self.mask(execution.inputs),
                reason=self.mask(execution.reason) if execution.reason else None,
            )
        )

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        """Snapshot the task run with its attempts (masked outputs and metrics)."""
        if execution.id not in self.recorded or self._images.get(execution.id) != execution.images:
            self.execution_changed(execution)  # images are learnt as tasks start
        position = self._positions.setdefault(task_run.id, len(self._positions))
        self._put(
            task_run_record(
                execution.id,
                position,
                task_run,
                outputs=self.mask(task_run.outputs),
                metrics=self.mask(task_run.metrics),
            )
        )

    def log(self, line: LogLine) -> None:
        """Queue one log line (the runner has masked it already)."""
        self._queue.put(line)
        self._since_check += 1
        if self._since_check >= 512:
            self._since_check = 0
            self._throttle()

    def log_batch(self, batch: LogBatch) -> None:
        """Queue lines that arrived together as one item (the runner has masked them)."""
        self._queue.put(batch)
        with self._lines_lock:
            self._queued_lines += len(batch.messages)
        self._throttle()

    def log_many(self, lines: list[LogLine]) -> None:
        """Queue lines that arrived together (the runner has masked them already)."""
        put = self._queue.put
        for line in lines:
            put(line)
        self._since_check += len(lines)
        if self._since_check >= 512:
            self._since_check = 0
            self._throttle()

    # ----- internals

    def _put(self, item: Write) -> None:
        self._queue.put(item)
        self._throttle()

    def _backlog(self) -> int:
        """Items waiting for the writer, a batch counted by its lines."""
        return self._queue.qsize() + self._queued_lines

    def _throttle(self) -> None:
        """Wait while the writer is far behind, so memory stays flat on a very loud task."""
        if self._backlog() <= self.max_backlog:
            return
        low = self.max_backlog // 2
        while self._backlog() > low and self._thread is not None and self._thread.is_alive():
            time.sleep(0.002)

    def _write_loop(self) -> None:
        try:
            self._sink = self._open_sink()
        except StoreError as exc:
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                batch: list[Write] = []
                lines = batched = 0
                item = self._queue.get()
                flushes: list[_Flush] = []
                while True:
                    if item is _STOP:
                        stopping = True
                    elif isinstance(item, _Flush):
                        flushes.append(item)
                    else:
                        batch.append(item)
                        if isinstance(item, LogBatch):
                            batched += len(item.messages)
                            lines += len(item.messages)
                        else:
                            lines += 1
                    if lines >= MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                self._write(batch)
                if batched:
                    with self._lines_lock:
                        self._queued_lines -= batched
                for flush in flushes:
                    flush.written.set()
        finally:
            if self._sink is not None:
                self._sink.close()

    def _write(self, batch: list[Write]) -> None:
        """Write a batch; once a write failed for good, only the latest snapshots (the states).

        Log lines are given up after such a failure (the record has a gap anyway), but states
        are still tried, so a store that recovers, or a failure that came from a line, leaves
        the record saying how the run ended rather than RUNNING for a run the user saw finish.
        Nothing escapes from here: a dead writer would lose the record silently.
        """
        if self.error is not None:
            snapshots = _latest_snapshots(batch)
            self._dropped += len(batch) - len(snapshots)
            batch = snapshots
        try:
            self._write_waiting(batch)
        except Exception as exc:  # whatever it is, finish() reports it and the run exits 4
            if self.error is not None:
                self._dropped += len(batch)
                self._state_recorded = self._state_recorded and not _has_execution(batch)
                return
            self.error = (
                exc
                if isinstance(exc, StoreError)
                else StoreError(
                    f"the record store {self.where} failed: {type(exc).__name__}: {exc}"
                )
            )
            log.error(
                "cannot record the run; it goes on, recording only its states",
                error=self.error.message,
            )
            self._write(batch)  # its snapshots alone, now that self.error is set
            return
        if _has_execution(batch):
            self._state_recorded = True

    def _write_waiting(self, batch: list[Write]) -> None:
        """Write a batch, trying again while the store cannot be reached (``self.retry``).

        The wait is bounded by the retry's patience from the first failure of this outage (so
        an hour-long outage costs one patience, not one per batch), and ends at once when the
        retry's ``give_up`` is set.

        Raises:
            StoreError: the batch could not be written.
        """
        retry = self.retry
        if retry is None or not batch:
            self._sink_now().write(batch)
            return

        def out_of_patience(state: RetryCallState) -> bool:
            since = self._outage_since
            return (
                retry.give_up.is_set()
                or since is None
                or time.monotonic() - since >= retry.patience
            )

        def waiting(state: RetryCallState) -> None:
            if state.attempt_number == 1:
                failure = state.outcome.exception() if state.outcome else None
                log.warning(
                    "cannot write the run's records now; trying again until the store is back",
                    error=str(failure),
                    patience_seconds=retry.patience,
                )

        retrying = Retrying(
            retry=retry_if_exception_type(StoreUnavailable),
            stop=out_of_patience,
            wait=wait_exponential(multiplier=0.25, max=retry.max_wait),
            sleep=retry.pause,
            before_sleep=waiting,
            reraise=True,
        )
        retrying(self._try_write, batch)
        if self._outage_since is not None:
            log.info(
                "the store is back: the run's records are written",
                after_seconds=round(time.monotonic() - self._outage_since, 1),
            )
            self._outage_since = None

    def _try_write(self, batch: list[Write]) -> None:
        """One try; a store that could not be reached is opened again on the next one."""
        try:
            self._sink_now().write(batch)
        except StoreUnavailable:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
            self._drop_sink()
            raise

    def _sink_now(self) -> RecordSink:
        if self._sink is None:
            self._sink = self._open_sink()
        return self._sink

    def _drop_sink(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.close()
            except Exception:  # a connection to a store that is away may fail to close
                log.debug("closing the record store failed", exc_info=True)


def _has_execution(batch: list[Write]) -> bool:
    return any(isinstance(item, ExecutionRecord) for item in batch)


def _latest_snapshots(batch: list[Write]) -> list[Write]:
    """The last execution and task-run snapshot of each id in ``batch``, in first-seen order."""
    latest: dict[tuple[type, str], Write] = {}
    for item in batch:
        if isinstance(item, ExecutionRecord | TaskRunRecord):
            latest[(type(item), item.id)] = item
    return list(latest.values())


def end_failed(execution: Execution, recorder: Recorder, message: str) -> None:
    """End an execution that could not run (or broke) FAILED, with the reason in its log.

    The server's slots and the workers both end a run this way when it cannot start or breaks.
    """
    masked = recorder.mask(message)
    recorder.log(
        LogLine(datetime.now(UTC), execution.id, None, None, None, "executor", Level.ERROR, masked)
    )
    if not execution.state.current.terminal:
        execution.reason = masked
        execution.state.to(State.FAILED)
    recorder.execution_changed(execution)
