"""Our records in the JSON shapes of Kestra's API (Execution, TaskRun, LogEntry, Flow).

Only values already in the store are shown: outputs and inputs there are masked by the recorder,
so a secret never reaches a client through these shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from executor.model import Execution, LogLine, StateHistory, TaskRun, iso


def iso_duration(seconds: float) -> str:
    """Seconds as ISO-8601, the way Kestra's Java ``Duration`` prints them (``PT1.5S``)."""
    whole_hours, rest = divmod(max(seconds, 0.0), 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if whole_hours:
        text += f"{int(whole_hours)}H"
    if minutes:
        text += f"{int(minutes)}M"
    if secs or text == "PT":
        text += f"{round(secs, 6):g}S"
    return text


def state_json(state: StateHistory) -> dict[str, Any]:
    end = state.end
    duration = ((end or datetime.now(UTC)) - state.start).total_seconds()
    return {
        "current": state.current.value,
        "histories": [{"state": s.value, "date": iso(t)} for s, t in state.history],
        "duration": iso_duration(duration),
        "startDate": iso(state.start),
        "endDate": iso(end),
    }


def task_run_json(execution: Execution, run: TaskRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "executionId": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "taskId": run.task_id,
        "parentTaskRunId": run.parent_task_run_id,
        "value": None if run.value is None else str(run.value),
        "iteration": run.iteration,
        "attempts": [{"state": state_json(a.state)} for a in run.attempts] or None,
        "outputs": run.outputs or None,
        "state": state_json(run.state),
    }


def execution_json(execution: Execution, *, tenant: str | None = None) -> dict[str, Any]:
    """Kestra's ``Execution`` (plus ``url``, as its create endpoint answers)."""
    ui = f"/ui/{tenant}" if tenant else "/ui"
    return {
        "id": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "flowRevision": execution.flow_revision,
        "taskRunList": [task_run_json(execution, r) for r in execution.task_runs] or None,
        "inputs": execution.inputs or None,
        "outputs": execution.outputs or None,
        "labels": [{"key": k, "value": v} for k, v in execution.labels.items()],
        "variables": None,
        "state": state_json(execution.state),
        "parentId": execution.parent_id,
        "originalId": execution.original_id or execution.id,
        "trigger": execution.trigger,
        "deleted": False,
        "metadata": {"attemptNumber": 1, "originalCreatedDate": iso(execution.state.start)},
        "scheduleDate": None,
        "reason": execution.reason,
        "url": f"{ui}/executions/{execution.namespace}/{execution.flow_id}/{execution.id}",
    }


def log_json(execution: Execution, line: LogLine) -> dict[str, Any]:
    """Kestra's ``LogEntry``."""
    return {
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "taskId": line.task_id,
        "executionId": line.execution_id,
        "taskRunId": line.task_run_id,
        "attemptNumber": line.attempt,
        "triggerId": None,
        "timestamp": iso(line.timestamp),
        "level": line.level.value,
        "thread": line.stream,
        "message": line.message,
    }


def log_text(line: LogLine) -> str:
    """One line of ``/logs/{id}/download``: timestamp, level, message (Kestra's pretty form)."""
    return f"{iso(line.timestamp)} {line.level.value} {line.message}"


def flow_json(
    data: dict[str, Any], revision: int, deleted: bool, source: str | None
) -> dict[str, Any]:
    """Kestra's ``Flow`` (``FlowWithSource`` when ``source`` is given)."""
    shown = {**data, "revision": revision, "deleted": deleted}
    shown.setdefault("disabled", False)
    if source is not None:
        shown["source"] = source
    return shown
