"""How an execution started by a Subflow task says so: Kestra's ``trigger`` of type Subflow.

The one place that writes and reads it: the parent a child reads files of, the depth a chain of
subflows has reached, the execution a child reports to.
"""

from __future__ import annotations

from typing import Any

from executor.model.records import Execution, TaskRun

SUBFLOW_TRIGGER = "io.kestra.plugin.core.flow.Subflow"
DEPTH_VARIABLE = "subflowDepth"


def depth_of(execution: Execution) -> int:
    """How deep ``execution`` is in its chain of subflows (0: nothing started it as one)."""
    trigger = execution.trigger or {}
    if trigger.get("type") != SUBFLOW_TRIGGER:
        return 0
    depth = (trigger.get("variables") or {}).get(DEPTH_VARIABLE)
    return depth if isinstance(depth, int) and depth >= 1 else 1


def parent_of(trigger: dict[str, Any] | None) -> str | None:
    """The execution whose Subflow task started the one of ``trigger`` (``None``: no subflow)."""
    if not trigger or trigger.get("type") != SUBFLOW_TRIGGER:
        return None
    parent = (trigger.get("variables") or {}).get("executionId")
    return parent if isinstance(parent, str) else None


def subflow_trigger(
    parent: Execution, task_run: TaskRun, depth: int, iteration: int | None = None
) -> dict[str, Any]:
    """Kestra's ``trigger`` of a child started by ``task_run`` of ``parent``, with its depth
    (and, for a ForEachItem's child, its batch: ``taskRunIteration``)."""
    trigger: dict[str, Any] = {
        "id": task_run.task_id,
        "type": SUBFLOW_TRIGGER,
        "variables": {
            "executionId": parent.id,
            "namespace": parent.namespace,
            "flowId": parent.flow_id,
            "flowRevision": parent.flow_revision or 1,
            "taskRunId": task_run.id,
            "taskId": task_run.task_id,
            DEPTH_VARIABLE: depth,
        },
    }
    if iteration is not None:
        trigger["variables"]["taskRunIteration"] = iteration
    return trigger


def started_by(execution: Execution) -> tuple[str, str, str] | None:
    """(namespace, flow id, execution id) of the execution whose Subflow task started this
    one, as its trigger records it; ``None`` when no Subflow task did."""
    trigger = execution.trigger or {}
    started = trigger.get("variables") if trigger.get("type") == SUBFLOW_TRIGGER else None
    if not execution.parent_id or not isinstance(started, dict):
        return None
    return str(started.get("namespace")), str(started.get("flowId")), execution.parent_id
