"""Subflow: another flow run as its own execution, linked to this one."""

from __future__ import annotations

from executor.errors import FlowError
from executor.flow.model import SubflowTask
from executor.model import Level, State, TaskRun
from executor.run.context import RunContext, SubflowRequest
from executor.run.scope import Scope

_PASSED_ON = (State.FAILED, State.KILLED, State.WARNING, State.CANCELLED)


def run_subflow(task: SubflowTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    if ctx.hooks is None:
        raise FlowError("a Subflow needs a flows directory to look the flow up in")
    where = ctx.where(task)
    variables = ctx.variables(run, task, scope)
    inputs = ctx.renderer.render_value(task.inputs, variables, where=where)
    labels = dict(ctx.execution.labels) if task.inheritLabels else {}
    given = task.labels or {}
    pairs = given.items() if isinstance(given, dict) else [(d["key"], d["value"]) for d in given]
    for key, value in pairs:
        labels[key] = ctx.renderer.render(str(value), variables, where=where)
    namespace = ctx.renderer.render(task.namespace, variables, where=where)
    flow_id = ctx.renderer.render(task.flowId, variables, where=where)
    request = SubflowRequest(
        namespace, flow_id, task.revision, inputs, labels, ctx.execution, run, task.wait, where
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
        return State.FAILED if ended == State.CANCELLED else ended
    return State.SUCCESS


def _publish(run: TaskRun, scope: Scope, ctx: RunContext, outputs: dict[str, object]) -> None:
    with ctx.lock:
        run.outputs.update(outputs)
    ctx.changed(run)
    ctx.set_outputs(run, scope, dict(run.outputs))
