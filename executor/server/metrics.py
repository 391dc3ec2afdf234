"""Prometheus metrics at ``/prometheus`` (Kestra's path) and ``/metrics``.

Where Kestra has a metric for the same thing, ours has Kestra's name and labels (Micrometer's
``executor.execution.end.count`` becomes ``kestra_executor_execution_end_count_total`` with
``namespace_id``, ``flow_id``, ``state``), so a Kestra dashboard reads them; the rest carry the
``executor_`` prefix. Names, labels and example queries are listed in the README ("Health and
metrics").

What the server sees, it counts as it happens:

- executions that run in the server's own slots, through a run listener the queue gives every
  execution (:meth:`ServerMetrics.listener`);
- executions that run on workers, from the records the workers send (:meth:`ServerMetrics.
  observe_writes`): a worker reports snapshots, so each start, end and task run is counted once
  by its id, however often its snapshot arrives;
- store and engine errors met by API requests, the queue, slot executions and readiness checks.

What is a state rather than an event (queue depth, age of the oldest queued execution, slots
busy, workers alive and their last heartbeats) is read when Prometheus scrapes, with two cheap
queries. Counters start at zero when the server starts, as Prometheus expects.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from executor.errors import EngineError, ExecutorError, StoreError
from executor.model import Execution, LogBatch, LogLine, State, TaskRun
from executor.store.observe import queued
from executor.store.records import ExecutionRecord, TaskRunRecord, Write
from executor.store.workers import list_workers
from executor.version import executor_version

if TYPE_CHECKING:
    from executor.server.queue import ExecutionQueue

log = structlog.get_logger(__name__)

# Task runs last from milliseconds (a Log task) to hours (a training job).
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
EXECUTION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
_REMEMBERED = 10_000  # ids remembered to count each start and end once
SERVER_WORKER = "server"  # the ``worker`` label of the server's own slots
STORE_SECONDS = 2.0  # a scrape's store queries wait this long for a lock or a connection

router = APIRouter(tags=["metrics"], include_in_schema=False)


class _Seen:
    """The last ids seen (bounded): whether an event about one was counted already."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen (while it is among the last remembered)."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > _REMEMBERED:
            self._ids.popitem(last=False)
        return True


class ServerMetrics:
    """The server's counters, histograms and scrape-time gauges, in a registry of their own.

    Args:
        queue: the server's queue (its slots, its dispatch, its store).
    """

    def __init__(self, queue: ExecutionQueue) -> None:
        self.queue = queue
        # no `_created` series beside each counter and histogram: they double a scrape and no
        # dashboard reads them (a switch of the library's, for the whole process)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        self.registry = CollectorRegistry()
        # collected first, so an error it meets is in the same scrape's error counters
        self.registry.register(_StateCollector(self))
        execution = ["namespace_id", "flow_id", "state"]
        self.started = Counter(
            "kestra_executor_execution_started_count",
            "The total number of executions started",
            execution,
            registry=self.registry,
        )
        self.ended = Counter(
            "kestra_executor_execution_end_count",
            "The total number of executions ended",
            execution,
            registry=self.registry,
        )
        self.execution_duration = Histogram(
            "kestra_executor_execution_duration_seconds",
            "Duration of the executions ended",
            execution,
            buckets=EXECUTION_BUCKETS,
            registry=self.registry,
        )
        self.task_duration = Histogram(
            "kestra_executor_taskrun_ended_duration_seconds",
            "Duration of the task runs ended",
            ["namespace_id", "flow_id", "task_type", "state"],
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self.log_lines = Counter(
            "executor_log_lines",
            "Task log lines written to the store",
            ["level"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "executor_store_errors",
            "Errors of the record store met by the server",
            ["source"],
            registry=self.registry,
        )
        self.engine_errors = Counter(
            "executor_engine_errors",
            "Errors of the Docker engine met by the server's slots and probes",
            ["source"],
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._started_ids = _Seen()
        self._ended_ids = _Seen()
        self._task_ids = _Seen()
        self._flows: OrderedDict[str, tuple[str, str]] = OrderedDict()

    # ----- events

    def execution_state(
        self, execution_id: str, namespace: str, flow_id: str, state: str, duration: float | None
    ) -> None:
        """An execution's state as recorded: counts its start and its end, once each."""
        with self._lock:
            self._flows[execution_id] = (namespace, flow_id)
            self._flows.move_to_end(execution_id)
            if len(self._flows) > _REMEMBERED:
                self._flows.popitem(last=False)
            first_start = state == State.RUNNING and self._started_ids.first(execution_id)
            ended = State(state).terminal and self._ended_ids.first(execution_id)
        if first_start:
            self.started.labels(namespace, flow_id, state).inc()
        if ended:
            self.ended.labels(namespace, flow_id, state).inc()
            if duration is not None:
                self.execution_duration.labels(namespace, flow_id, state).observe(duration)

    def task_ended(
        self, task_run_id: str, execution_id: str, task_type: str, state: str, duration: float
    ) -> None:
        """A task run that ended: its duration, once."""
        with self._lock:
            if not self._task_ids.first(task_run_id):
                return
            namespace, flow_id = self._flows.get(execution_id, ("", ""))
        self.task_duration.labels(namespace, flow_id, task_type, state).observe(duration)

    def error(self, source: str, exc: BaseException) -> None:
        """Count a store or engine error met at ``source`` (other errors are not counted)."""
        if isinstance(exc, StoreError):
            self.store_errors.labels(source).inc()
        elif isinstance(exc, EngineError):
            self.engine_errors.labels(source).inc()

    def observe_writes(self, writes: Sequence[Write]) -> None:
        """Count what a worker's batch of records says (executions, task runs, log lines)."""
        try:
            for item in writes:
                if isinstance(item, ExecutionRecord):
                    self.execution_state(
                        item.id, item.namespace, item.flow_id, item.state, _seconds(item)
                    )
                elif isinstance(item, TaskRunRecord):
                    if item.duration is not None and State(item.state).terminal:
                        self.task_ended(
                            item.id, item.execution_id, item.task_type, item.state, item.duration
                        )
                elif isinstance(item, LogBatch):
                    self.log_lines.labels(item.level.value).inc(len(item))
                elif isinstance(item, LogLine):
                    self.log_lines.labels(item.level.value).inc()
        except Exception:  # metrics never fail a worker's report
            log.exception("metrics: a worker's records could not be counted")

    def listener(self) -> _Listener:
        """A run listener for one execution that runs in the server's slots."""
        return _Listener(self)

    # ----- exposition

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format."""
        return generate_latest(self.registry)


def _seconds(record: ExecutionRecord) -> float | None:
    if record.end_date is None:
        return None
    start = datetime.fromisoformat(record.start_date)
    return max((datetime.fromisoformat(record.end_date) - start).total_seconds(), 0.0)


class _Listener:
    """Feeds :class:`ServerMetrics` from a slot's execution, as the store's recorder is fed."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def execution_changed(self, execution: Execution) -> None:
        try:
            state = execution.state
            self.metrics.execution_state(
                execution.id, execution.namespace, execution.flow_id, state.current, state.duration
            )
        except Exception:  # metrics never fail a run
            log.exception("metrics: an execution could not be counted")

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        duration = task_run.state.duration
        if not task_run.state.current.terminal or duration is None:
            return
        try:
            self.metrics.task_ended(
                task_run.id, execution.id, task_run.task_type, task_run.state.current, duration
            )
        except Exception:
            log.exception("metrics: a task run could not be counted")

    def log(self, line: LogLine) -> None:
        self.metrics.log_lines.labels(line.level.value).inc()

    def log_many(self, lines: list[LogLine]) -> None:
        for line in lines:
            self.log(line)

    def log_batch(self, batch: LogBatch) -> None:
        self.metrics.log_lines.labels(batch.level.value).inc(len(batch))


class _StateCollector(Collector):
    """Gauges read at scrape time: queue, slots, workers (and the version, as an info gauge)."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []  # computed at each scrape: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("executor_info", "The executor's version", labels=["version"])
        info.add_metric([executor_version()], 1)
        yield info
        queue = self.metrics.queue
        try:
            records = queue.stores.records
            with records.connect(busy_timeout=STORE_SECONDS, migrate=False) as store:
                stats = queued(store)
                workers = list_workers(store) if queue.dispatch is not None else []
        except ExecutorError as exc:
            self.metrics.error("metrics", exc)
            log.warning("metrics: the store could not be read", error=str(exc))
            return
        yield _gauge("executor_queue_depth", "Executions waiting to start (QUEUED)", stats.depth)
        age = (datetime.now(UTC) - stats.oldest).total_seconds() if stats.oldest else 0.0
        yield _gauge(
            "executor_queue_oldest_age_seconds",
            "How long the oldest queued execution has waited (0 when none waits)",
            max(age, 0.0),
        )
        yield from _slots_and_workers(queue, workers)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _slots_and_workers(queue: ExecutionQueue, workers: list[Any]) -> Iterator[Metric]:
    running = GaugeMetricFamily(
        "kestra_worker_job_running",
        'Executions running now, by worker (the server\'s own slots: worker="server")',
        labels=["worker"],
    )
    slots = GaugeMetricFamily(
        "kestra_worker_job_thread", "Execution slots, by worker", labels=["worker"]
    )
    if queue.dispatch is None:
        running.add_metric([SERVER_WORKER], len(queue.running_ids()))
        slots.add_metric([SERVER_WORKER], queue.workers)
        yield running
        yield slots
        return
    lapse: timedelta = queue.dispatch.judging_lapse()
    now = datetime.now(UTC)
    up = GaugeMetricFamily(
        "executor_worker_up",
        "1 while a worker heartbeats, 0 once it is judged lost",
        labels=["worker", "host"],
    )
    beat = GaugeMetricFamily(
        "executor_worker_last_heartbeat_timestamp_seconds",
        "When each worker last heartbeated (Unix time)",
        labels=["worker", "host"],
    )
    alive = 0
    for row in workers:
        live = now - row.last_seen <= lapse
        alive += int(live)
        name, host = row.info.name, row.info.host
        up.add_metric([name, host], int(live))
        beat.add_metric([name, host], row.last_seen.timestamp())
        if live:
            running.add_metric([name], len(row.info.running))
            slots.add_metric([name], row.info.slots)
    yield _gauge("executor_workers_alive", "Workers heartbeating now", alive)
    yield up
    yield beat
    yield running
    yield slots


def _scrape(request: Request) -> Response:
    metrics: ServerMetrics = request.app.state.metrics
    started = time.monotonic()
    body = metrics.exposition()
    log.debug("metrics scraped", seconds=round(time.monotonic() - started, 3))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/prometheus")
def prometheus(request: Request) -> Response:
    """Every metric, in Prometheus's text format, at Kestra's path."""
    return _scrape(request)


@router.get("/metrics")
def metrics_endpoint(request: Request) -> Response:
    """The same, at the path Prometheus scrapes by default."""
    return _scrape(request)
