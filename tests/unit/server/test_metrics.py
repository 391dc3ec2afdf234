"""The server's Prometheus metrics, fed as a run and a worker feed them, read as Prometheus would.

A real server process running a real execution is scraped in tests/integration/test_observe.py,
and a worker in a container in tests/integration/test_compose.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from executor.errors import EngineLost, StoreError, UsageError
from executor.host import Owner
from executor.model import Execution, Level, LogBatch, LogLine, State, StateHistory, TaskRun
from executor.server.metrics import ServerMetrics
from executor.services import local_services
from executor.settings import Settings
from executor.store.db import Store
from executor.store.local import LocalServices
from executor.store.records import execution_record, task_run_record
from executor.store.workers import WorkerInfo, heartbeat

NAMESPACE, FLOW = "company.team", "hello"
SHELL = "io.kestra.plugin.scripts.shell.Commands"


@dataclass
class FakeDispatch:
    lapse: timedelta = timedelta(seconds=30)

    def judging_lapse(self) -> timedelta:
        return self.lapse


@dataclass
class FakeQueue:
    """What the metrics read of the queue: its settings, slots and dispatch."""

    settings: Settings
    workers: int = 2
    dispatch: FakeDispatch | None = None
    busy: list[str] = field(default_factory=list)

    def running_ids(self) -> list[str]:
        return list(self.busy)

    @property
    def stores(self) -> LocalServices:
        return local_services(self.settings)


def samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by Prometheus's own parser: (name, labels) -> value."""
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: ServerMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def _settings(home: Path) -> Settings:
    settings = Settings.from_env({"EXECUTOR_HOME": str(home)})
    Store(settings.db_path).close()  # the schema, as the server's start makes it
    return settings


def _run(metrics: ServerMetrics) -> Execution:
    """An execution told to the slot listener as the runner tells it: states, a task, logs."""
    listener = metrics.listener()
    execution = Execution(NAMESPACE, FLOW)
    task = TaskRun("greet", SHELL)
    execution.task_runs.append(task)
    for state in (State.RUNNING, State.RUNNING):  # told twice: counted once
        execution.state.to(state)
        listener.execution_changed(execution)
    task.state.to(State.RUNNING)
    listener.task_changed(execution, task)
    now = datetime.now(UTC)
    listener.log(LogLine(now, execution.id, "greet", task.id, 1, "stdout", Level.INFO, "hi"))
    listener.log_batch(
        LogBatch(now, execution.id, "greet", task.id, 1, "stderr", Level.ERROR, ["a", "b"])
    )
    task.state.to(State.SUCCESS)
    listener.task_changed(execution, task)
    listener.task_changed(execution, task)
    execution.state.to(State.SUCCESS)
    listener.execution_changed(execution)
    listener.execution_changed(execution)  # the queue tells the end once more
    return execution


def test_a_slot_execution_is_counted_once_by_kestras_names(home: Path) -> None:
    """Start, end, duration, task duration and log lines: each event counted once, labelled by
    namespace, flow and state as Kestra labels them."""
    metrics = ServerMetrics(FakeQueue(_settings(home)))  # type: ignore[arg-type]
    _run(metrics)
    ids = {"namespace_id": NAMESPACE, "flow_id": FLOW}
    assert (
        value(metrics, "kestra_executor_execution_started_count_total", **ids, state="RUNNING") == 1
    )
    assert value(metrics, "kestra_executor_execution_end_count_total", **ids, state="SUCCESS") == 1
    assert (
        value(metrics, "kestra_executor_execution_duration_seconds_count", **ids, state="SUCCESS")
        == 1
    )
    task = {**ids, "task_type": SHELL, "state": "SUCCESS"}
    assert value(metrics, "kestra_executor_taskrun_ended_duration_seconds_count", **task) == 1
    assert value(metrics, "executor_log_lines_total", level="INFO") == 1
    assert value(metrics, "executor_log_lines_total", level="ERROR") == 2


def test_worker_snapshots_sent_twice_count_once(home: Path) -> None:
    """A worker's records (snapshots, maybe delivered again after a retry) count each execution
    start and end, and each task run, once; task runs get their execution's flow labels."""
    metrics = ServerMetrics(FakeQueue(_settings(home)))  # type: ignore[arg-type]
    execution = Execution(NAMESPACE, FLOW, state=StateHistory(State.RUNNING))
    owner = Owner.current()
    task = TaskRun("greet", SHELL)
    running = [execution_record(execution, owner), task_run_record(execution.id, 0, task)]
    line = LogLine(datetime.now(UTC), execution.id, "greet", task.id, 1, "stdout", Level.WARN, "w")
    metrics.observe_writes([*running, line])
    metrics.observe_writes(running)
    task.state.to(State.FAILED)
    execution.state.to(State.FAILED)
    ended = [task_run_record(execution.id, 0, task), execution_record(execution, owner)]
    metrics.observe_writes(ended)
    metrics.observe_writes(ended)
    ids = {"namespace_id": NAMESPACE, "flow_id": FLOW}
    started = value(
        metrics, "kestra_executor_execution_started_count_total", **ids, state="RUNNING"
    )
    assert started == 1
    assert value(metrics, "kestra_executor_execution_end_count_total", **ids, state="FAILED") == 1
    task_labels = {**ids, "task_type": SHELL, "state": "FAILED"}
    assert (
        value(metrics, "kestra_executor_taskrun_ended_duration_seconds_count", **task_labels) == 1
    )
    assert value(metrics, "executor_log_lines_total", level="WARN") == 1


def test_store_and_engine_errors_are_counted_by_where_they_were_met(home: Path) -> None:
    """Store and engine errors each have a counter labelled by source; other errors do not."""
    metrics = ServerMetrics(FakeQueue(_settings(home)))  # type: ignore[arg-type]
    metrics.error("api", StoreError("the record store is locked"))
    metrics.error("execution", EngineLost("unix:///var/run/docker.sock", "connection refused"))
    metrics.error("api", UsageError("bad input"))
    assert value(metrics, "executor_store_errors_total", source="api") == 1
    assert value(metrics, "executor_engine_errors_total", source="execution") == 1
    assert not any(name.startswith("executor_usage") for name, _ in samples(metrics))


def test_queue_depth_and_the_oldest_wait_are_read_at_scrape_time(home: Path) -> None:
    """Executions recorded QUEUED are the queue depth; the oldest one's wait is its age."""
    settings = _settings(home)
    metrics = ServerMetrics(FakeQueue(settings, busy=["x"]))  # type: ignore[arg-type]
    assert value(metrics, "executor_queue_depth") == 0
    assert value(metrics, "executor_queue_oldest_age_seconds") == 0
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with Store(settings.db_path) as store:
        for start in (an_hour_ago, datetime.now(UTC)):
            queued = Execution(
                NAMESPACE, FLOW, state=StateHistory(State.QUEUED, [(State.QUEUED, start)])
            )
            store.write([execution_record(queued, Owner.current())])
    assert value(metrics, "executor_queue_depth") == 2
    assert 3590 < value(metrics, "executor_queue_oldest_age_seconds") < 7200
    assert value(metrics, "kestra_worker_job_running", worker="server") == 1
    assert value(metrics, "kestra_worker_job_thread", worker="server") == 2


def test_workers_alive_lost_and_their_heartbeats(home: Path) -> None:
    """With a broker: workers alive, each worker up or lost, its last heartbeat and its slots."""
    settings = _settings(home)
    metrics = ServerMetrics(FakeQueue(settings, dispatch=FakeDispatch()))  # type: ignore[arg-type]
    started = datetime.now(UTC).isoformat()
    with Store(settings.db_path) as store:
        for name, running in (("w1", ["e1"]), ("w2", [])):
            info = WorkerInfo(name, f"host-{name}", "engine", ["default"], [], 2, running, started)
            heartbeat(store, info)
    _age(settings, "w2", timedelta(minutes=5))
    got = samples(metrics)
    assert got[("executor_workers_alive", ())] == 1
    assert got[("executor_worker_up", (("host", "host-w1"), ("worker", "w1")))] == 1
    assert got[("executor_worker_up", (("host", "host-w2"), ("worker", "w2")))] == 0
    beat = got[
        (
            "executor_worker_last_heartbeat_timestamp_seconds",
            (("host", "host-w1"), ("worker", "w1")),
        )
    ]
    assert abs(beat - datetime.now(UTC).timestamp()) < 60
    assert got[("kestra_worker_job_running", (("worker", "w1"),))] == 1
    assert got[("kestra_worker_job_thread", (("worker", "w1"),))] == 2
    assert ("kestra_worker_job_running", (("worker", "w2"),)) not in got


def _age(settings: Settings, worker: str, by: timedelta) -> None:
    """Move a worker's last heartbeat back in time."""
    from executor.store.records import ts

    with Store(settings.db_path) as store, store.transaction() as conn:
        conn.execute(
            "UPDATE workers SET last_seen = ? WHERE name = ?",
            (ts(datetime.now(UTC) - by), worker),
        )


def test_a_scrape_survives_a_store_it_cannot_read(tmp_path: Path) -> None:
    """When the store cannot be read, the counters are still served and the error is counted."""
    settings = Settings.from_env({"EXECUTOR_HOME": str(tmp_path / "home")})
    (tmp_path / "home").mkdir()
    settings.db_path.write_text("not a database")  # type: ignore[union-attr]
    metrics = ServerMetrics(FakeQueue(settings))  # type: ignore[arg-type]
    got: dict[Any, float] = samples(metrics)
    assert ("executor_queue_depth", ()) not in got
    assert got[("executor_store_errors_total", (("source", "metrics"),))] == 1
