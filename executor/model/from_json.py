"""An execution back from its JSON (ours, ``Execution.to_json``, or the server's Kestra shape):
what ``run --server`` follows, and what a worker runs again (a restart, a replay)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from executor.model.records import Attempt, Execution, State, StateHistory, TaskRun


def when_from_json(text: str | None) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else datetime.now(UTC)


def state_from_json(data: Mapping[str, Any]) -> StateHistory:
    entries = data.get("histories") or []
    history = [(State(h["state"]), when_from_json(h.get("date"))) for h in entries]
    current = State(data["current"])
    return StateHistory(current, history or [(current, datetime.now(UTC))])


def _attempt(number: int, data: Mapping[str, Any]) -> Attempt:
    return Attempt(
        number,
        state_from_json(data["state"]),
        data.get("exitCode"),
        bool(data.get("oomKilled")),
        data.get("reason"),
    )


def task_run_from_json(data: Mapping[str, Any]) -> TaskRun:
    return TaskRun(
        task_id=data["taskId"],
        task_type=data.get("type") or "",
        parent_task_run_id=data.get("parentTaskRunId"),
        id=data["id"],
        state=state_from_json(data["state"]),
        attempts=[_attempt(n + 1, a) for n, a in enumerate(data.get("attempts") or [])],
        outputs=data.get("outputs") or {},
        metrics=data.get("metrics") or [],
        image_id=data.get("imageId"),
        reason=data.get("reason"),
        value=data.get("value"),
        iteration=data.get("iteration"),
    )


def execution_from_json(data: Mapping[str, Any]) -> Execution:
    """An execution with its states, task runs, attempts and outputs."""
    original = data.get("originalId")
    return Execution(
        data["namespace"],
        data["flowId"],
        data.get("inputs") or {},
        id=data["id"],
        state=state_from_json(data["state"]),
        task_runs=[task_run_from_json(run) for run in data.get("taskRunList") or []],
        images=data.get("images") or {},
        image_digests=data.get("imageDigests") or {},
        reason=data.get("reason"),
        labels={label["key"]: label["value"] for label in data.get("labels") or []},
        parent_id=data.get("parentId"),
        trigger=data.get("trigger"),
        outputs=data.get("outputs") or {},
        flow_revision=data.get("flowRevision"),
        original_id=original if original and original != data["id"] else None,
    )
