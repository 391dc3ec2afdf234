"""Tasks that act on the running execution: ``Labels``, ``Exit``, ``Assert``, ``log.Fetch``."""

from __future__ import annotations

import json
from typing import Any

from executor.flow.tasks_core import AssertTask, ExitTask, LabelsTask, LogFetchTask
from executor.flow.template import kestra_truthy
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt

EXIT_STATES = {
    "SUCCESS": State.SUCCESS,
    "WARNING": State.WARNING,
    "KILLED": State.KILLED,
    "FAILED": State.FAILED,
    "CANCELED": State.CANCELLED,
    "CANCELLED": State.CANCELLED,
}
LEVEL_ORDER = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


def _labels(task: LabelsTask, job: HostJob) -> AttemptResult:
    """Kestra's Labels: a map, a list of {key, value}, or JSON text giving either."""
    given: Any = job.render(task.labels)
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except ValueError:
            raise TaskInputError("'labels' must be a map or a list of {key, value}") from None
    if isinstance(given, list):
        try:
            given = {str(item["key"]): item["value"] for item in given}
        except (KeyError, TypeError):
            raise TaskInputError("each label in a list needs 'key' and 'value'") from None
    if not isinstance(given, dict) or not given:
        raise TaskInputError("'labels' must be a non-empty map or list of {key, value}")
    labels = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in given.items()}
    system = [k for k in labels if k.startswith("system.")]
    if system:
        raise TaskInputError(f"system labels cannot be set by a task: {', '.join(system)}")
    with job.ctx.lock:
        job.ctx.execution.labels.update(labels)
    job.ctx.emit_execution()
    job.log(Level.INFO, "labels set: " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    return AttemptResult(State.SUCCESS)


def _exit(task: ExitTask, job: HostJob) -> AttemptResult:
    """End the execution in ``state``: nothing after starts, and KILLED stops what runs."""
    name = job.text(task.state).strip().upper()
    state = EXIT_STATES.get(name)
    if state is None:
        raise TaskInputError(f"'state' must be one of {', '.join(EXIT_STATES)}, got {name!r}")
    reason = f"task '{task.id}' ended the execution {state.value}"
    job.log(Level.INFO if state in (State.SUCCESS, State.WARNING) else Level.WARN, reason)
    job.ctx.cancel.cancel(state, reason)
    return AttemptResult(state, None if state in (State.SUCCESS, State.WARNING) else reason)


def _assert(task: AssertTask, job: HostJob) -> AttemptResult:
    failed = []
    for condition in task.conditions:
        value = job.render(condition) if isinstance(condition, str) else condition
        if not kestra_truthy(value):
            shown = condition if isinstance(condition, str) else json.dumps(condition)
            failed.append(shown)
            job.log(Level.ERROR, f"Assertion `{shown}` failed!")
    if not failed:
        return AttemptResult(State.SUCCESS)
    message = (
        job.text(task.errorMessage) if task.errorMessage else f"{len(failed)} assertion(s) failed"
    )
    job.log(Level.ERROR, message)
    return AttemptResult(State.FAILED, f"{job.where}: {message}")


def _fetch(task: LogFetchTask, job: HostJob) -> AttemptResult:
    """The lines of an execution at ``level`` or above, one JSON (Ion) struct per line."""
    ctx = job.ctx
    execution_id = job.text(task.executionId).strip() if task.executionId else ctx.execution.id
    tasks = {job.text(t) for t in task.tasksId or []}
    minimum = LEVEL_ORDER.index(task.level)
    if execution_id == ctx.execution.id:
        ctx.flush_listeners()  # this run's lines are written by the recorder's own thread
    lines = ctx.stores().records.logs(execution_id)
    kept = [
        line
        for line in lines
        if _rank(line.level.value) >= minimum and (not tasks or line.task_id in tasks)
    ]
    chunks = (
        (
            json.dumps(
                {
                    "timestamp": line.timestamp.isoformat(),
                    "level": line.level.value,
                    "taskId": line.task_id,
                    "taskRunId": line.task_run_id,
                    "executionId": line.execution_id,
                    "message": line.message,
                }
            )
            + "\n"
        ).encode()
        for line in kept
    )
    name = f"{execution_id}.ion"
    uri = job.artifacts().write(job.store_prefix(), name, chunks)
    return AttemptResult(State.SUCCESS, outputs={"uri": uri, "size": len(kept)})


def _rank(level: str) -> int:
    return LEVEL_ORDER.index(level) if level in LEVEL_ORDER else LEVEL_ORDER.index("INFO")


labels_attempt = host_attempt(_labels)
exit_attempt = host_attempt(_exit)
assert_attempt = host_attempt(_assert)
log_fetch_attempt = host_attempt(_fetch)


HANDLES: dict[type[Any], Handler[Any]] = {
    LabelsTask: with_attempts(labels_attempt),
    ExitTask: with_attempts(exit_attempt),
    AssertTask: with_attempts(assert_attempt),
    LogFetchTask: with_attempts(log_fetch_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
