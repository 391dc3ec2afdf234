"""Subflow: another flow run as its own execution, linked to this one.

A flow may call itself through a template (``flowId: "{{ flow.id }}"``), which the check made
before the run cannot see; each child carries its depth in its trigger, so a chain stops at
``max_subflow_depth`` wherever it runs (``executor run``, the server's slots, a worker), with a
reason that goes up the chain.
"""

from __future__ import annotations

from typing import Any

from executor.errors import FlowError
from executor.flow import model as m
from executor.flow.model import ForEachItemTask, SubflowTask
from executor.model import Level, State, TaskRun
from executor.model.subflow import depth_of
from executor.run.context import RunContext, SubflowRequest
from executor.run.handlers.attempts import Handler
from executor.run.scope import Scope

_PASSED_ON = (State.FAILED, State.KILLED, State.WARNING, State.CANCELLED)


def run_subflow(task: SubflowTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    if ctx.hooks is None:
        raise FlowError("a Subflow needs a flows directory to look the flow up in")
    where = ctx.where(task)
    variables = ctx.variables(run, task, scope)
    inputs = ctx.renderer.render_value(task.inputs, variables, where=where)
    labels = child_labels(task, variables, ctx)
    namespace = ctx.renderer.render(task.namespace, variables, where=where)
    flow_id = ctx.renderer.render(task.flowId, variables, where=where)
    depth = child_depth(ctx, namespace, flow_id, where)
    request = SubflowRequest(
        namespace,
        flow_id,
        task.revision,
        inputs,
        labels,
        ctx.execution,
        run,
        task.wait,
        where,
        depth,
        scope.cancel,
    )
    child = ctx.hooks.run_subflow(request)
    ctx.log(run, Level.INFO, f"subflow {namespace}.{flow_id}: execution {child.id}")
    outputs: dict[str, object] = {"executionId": child.id}
    if not task.wait:
        outputs["state"] = State.CREATED.value
        _publish(run, scope, ctx, outputs)
        return State.SUCCESS
    ended = child.state.current
    outputs["state"] = ended.value
    outputs["outputs"] = dict(child.outputs)
    _publish(run, scope, ctx, outputs)
    if task.transmitFailed and ended in _PASSED_ON:
        run.reason = f"subflow execution {child.id} ended {ended.value}"
        if child.reason:
            run.reason += f": {child.reason}"
            if ended in (State.FAILED, State.KILLED):  # why (a depth limit...) goes up the chain
                _fail_execution(ctx, child.reason)
        return State.FAILED if ended == State.CANCELLED else ended
    return State.SUCCESS


def child_labels(
    task: SubflowTask | ForEachItemTask, variables: dict[str, Any], ctx: RunContext
) -> dict[str, str]:
    """The labels a child gets: the parent's with ``inheritLabels``, then the task's, rendered."""
    where = ctx.where(task)
    labels = dict(ctx.execution.labels) if task.inheritLabels else {}
    given = task.labels or {}
    pairs = given.items() if isinstance(given, dict) else [(d["key"], d["value"]) for d in given]
    for key, value in pairs:
        labels[key] = ctx.renderer.render(str(value), variables, where=where)
    return labels


def child_depth(ctx: RunContext, namespace: str, flow_id: str, where: str) -> int:
    """How deep a child of this execution runs in its chain of subflows.

    Raises:
        FlowError: past ``max_subflow_depth`` (the execution fails with that reason).
    """
    depth = depth_of(ctx.execution) + 1
    limit = ctx.settings.max_subflow_depth
    if depth > limit:
        message = (
            f"subflow {namespace}.{flow_id} not started: it would run {depth} subflows deep,"
            f" past the limit of {limit} (EXECUTOR_MAX_SUBFLOW_DEPTH)"
        )
        _fail_execution(ctx, message)
        raise FlowError(message, where=where)
    return depth


def _fail_execution(ctx: RunContext, reason: str) -> None:
    """Give the execution ``reason`` for failing (unless it has one already)."""
    with ctx.lock:
        ctx.execution.reason = ctx.execution.reason or ctx.secrets.mask(reason)


def _publish(run: TaskRun, scope: Scope, ctx: RunContext, outputs: dict[str, object]) -> None:
    with ctx.lock:
        run.outputs.update(outputs)
    ctx.changed(run)
    ctx.set_outputs(run, scope, dict(run.outputs))


HANDLES: dict[type[Any], Handler[Any]] = {
    m.SubflowTask: run_subflow,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
