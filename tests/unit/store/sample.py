"""Synthetic executions for store and CLI tests (no engine needed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from executor.host import Owner
from executor.model import (
    Attempt,
    Execution,
    Level,
    LogBatch,
    LogLine,
    State,
    StateHistory,
    TaskRun,
)
from executor.store.db import Store
from executor.store.records import Write, execution_record, task_run_record

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed time ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def ended_execution(
    flow_id: str = "hello", namespace: str = "tests.store", start: float = 0.0
) -> Execution:
    """A FAILED execution: a WorkingDirectory with a child that succeeded and one that failed."""
    e = Execution(namespace, flow_id, {"name": "world"})
    e.state.history = [(State.CREATED, at(start))]
    e.state.current = State.CREATED
    _step(e.state, State.RUNNING, at(start + 0.1))
    e.images = {"busybox": "sha256:1023935f078f"}
    wd = TaskRun("wd", "io.kestra.plugin.core.flow.WorkingDirectory")
    first = TaskRun("first", "io.kestra.plugin.scripts.shell.Commands", wd.id)
    fails = TaskRun("fails", "io.kestra.plugin.scripts.shell.Commands", wd.id)
    for run in (wd, first, fails):
        run.state.history = [(State.CREATED, at(start + 0.2))]
        _step(run.state, State.RUNNING, at(start + 0.3))
    first.attempts = [_attempt(1, State.SUCCESS, 0, start + 0.3, start + 0.8)]
    _step(first.state, State.SUCCESS, at(start + 0.8))
    first.outputs = {
        "vars": {"answer": 42},
        "outputFiles": {"out.csv": "kestra:///tests/store/hello/out.csv"},
    }
    first.metrics = [{"name": "rows", "type": "counter", "value": 3, "tags": {}}]
    fails.attempts = [
        _attempt(1, State.FAILED, 3, start + 0.9, start + 1.0),
        _attempt(2, State.FAILED, 137, start + 1.1, start + 1.4, oom=True),
    ]
    fails.reason = "exit code 137 (killed: out of memory)"
    fails.stderr_tail = ["boom", "out of memory"]
    _step(fails.state, State.FAILED, at(start + 1.4))
    _step(wd.state, State.FAILED, at(start + 1.5))
    e.task_runs = [wd, first, fails]
    _step(e.state, State.FAILED, at(start + 1.6))
    return e


def _step(history: StateHistory, state: State, when: datetime) -> None:
    history.current = state
    history.history.append((state, when))


def _attempt(
    number: int, state: State, code: int, start: float, end: float, oom: bool = False
) -> Attempt:
    a = Attempt(
        number, exit_code=code, oom_killed=oom, reason=None if code == 0 else f"exit code {code}"
    )
    a.state.history = [(State.CREATED, at(start))]
    _step(a.state, State.RUNNING, at(start))
    _step(a.state, state, at(end))
    return a


def lines_for(e: Execution) -> list[LogLine]:
    """A few log lines of the sample execution, one per stream."""
    first, fails = e.task_run("first"), e.task_run("fails")
    return [
        LogLine(at(0.1), e.id, None, None, None, "executor", Level.INFO, "execution started"),
        LogLine(at(0.5), e.id, "first", first.id, 1, "stdout", Level.INFO, "hello from first"),
        LogLine(at(0.95), e.id, "fails", fails.id, 1, "stderr", Level.ERROR, "boom"),
        LogLine(at(1.6), e.id, None, None, None, "executor", Level.ERROR, "execution ended"),
    ]


def record(
    db: Path,
    e: Execution,
    owner: Owner | None = None,
    lines: Sequence[LogLine | LogBatch] | None = None,
) -> None:
    """Write an execution, its task runs and its lines into the store at ``db``."""
    owner = owner or Owner.current()
    writes: list[Write] = [execution_record(e, owner)]
    writes += [task_run_record(e.id, i, run) for i, run in enumerate(e.task_runs)]
    writes += list(lines) if lines is not None else lines_for(e)
    with Store(db) as store:
        store.write(writes)


def running_execution(flow_id: str = "slow") -> Execution:
    """An execution still RUNNING, with one task RUNNING in its first attempt."""
    e = Execution("tests.store", flow_id)
    e.state.to(State.RUNNING)
    run = TaskRun("sleeper", "io.kestra.plugin.scripts.shell.Commands")
    run.state.to(State.RUNNING)
    attempt = Attempt(1)
    attempt.state.to(State.RUNNING)
    run.attempts.append(attempt)
    e.task_runs.append(run)
    return e
