"""Flowable tasks that choose or group: Sequential, AllowFailure, If, Switch."""

from __future__ import annotations

from typing import Any

from executor.flow import model as m
from executor.flow.model import AllowFailureTask, IfTask, SequentialTask, SwitchTask
from executor.flow.template import kestra_truthy
from executor.model import Level, State, TaskRun
from executor.run.block import close_block, run_block
from executor.run.context import RunContext
from executor.run.handlers.attempts import Handler
from executor.run.scope import Scope


def run_sequential(task: SequentialTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    return run_block(task.tasks, task.errors, task.finally_, scope.under(run), ctx)


def run_allow_failure(task: AllowFailureTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    """A Sequential whose failure (after its errors) ends WARNING; a kill stays a kill."""
    state = run_block(task.tasks, task.errors, task.finally_, scope.under(run), ctx)
    if state in (State.FAILED, State.CANCELLED):
        ctx.log(run, Level.WARN, "a child failed; tolerated (AllowFailure)")
        return State.WARNING
    return state


def run_if(task: IfTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    """Evaluate the condition once (kept as ``evaluationResult``), then one branch."""
    condition = task.condition
    if isinstance(condition, str):
        variables = ctx.variables(run, task, scope)
        condition = ctx.renderer.render(condition, variables, where=ctx.where(task))
    result = kestra_truthy(condition)
    _publish(run, scope, ctx, {"evaluationResult": result})
    branch = task.then if result else task.else_
    children = scope.under(run)
    if not branch:
        ctx.log(run, Level.INFO, "condition is false and there is no else: nothing to run")
        return close_block(State.SUCCESS, task.errors, task.finally_, children, ctx)
    return run_block(branch, task.errors, task.finally_, children, ctx)


def run_switch(task: SwitchTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    """The case whose key equals the rendered value (exactly), else ``defaults``, else FAILED."""
    value = task.value
    if isinstance(value, str):
        variables = ctx.variables(run, task, scope)
        value = ctx.renderer.render(value, variables, where=ctx.where(task))
    text = value if isinstance(value, str) else _text(value)
    chosen = task.cases.get(text)
    _publish(run, scope, ctx, {"value": text, "defaults": chosen is None})
    children = scope.under(run)
    if chosen is None and not task.defaults:
        cases = ", ".join(repr(k) for k in task.cases) or "none"
        ctx.log(run, Level.ERROR, f"no case matches {text!r} (cases: {cases}) and no defaults")
        run.reason = f"no case matches {text!r} and there are no defaults"
        return close_block(State.FAILED, task.errors, task.finally_, children, ctx)
    return run_block(chosen or task.defaults, task.errors, task.finally_, children, ctx)


def _publish(run: TaskRun, scope: Scope, ctx: RunContext, outputs: dict[str, object]) -> None:
    with ctx.lock:
        run.outputs.update(outputs)
    ctx.changed(run)
    ctx.set_outputs(run, scope, dict(run.outputs))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


HANDLES: dict[type[Any], Handler[Any]] = {
    m.SequentialTask: run_sequential,
    m.AllowFailureTask: run_allow_failure,
    m.IfTask: run_if,
    m.SwitchTask: run_switch,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
