"""Tasks that run on the host and only compute: Log, Return, OutputValues, Fail."""

from __future__ import annotations

from typing import Any

from executor.flow import model as m
from executor.flow.model import FailTask, LogTask, OutputValuesTask, ReturnTask
from executor.flow.template import kestra_truthy
from executor.model import Attempt, Level, State, TaskRun
from executor.run.context import RunContext
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.scope import Scope


def log_attempt(
    task: LogTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    variables = ctx.variables(run, task, scope)
    messages = task.message if isinstance(task.message, list) else [task.message]
    level = Level.WARN if task.level == "WARN" else Level(task.level)
    for message in messages:
        text = ctx.renderer.render(message, variables, where=ctx.where(task))
        ctx.log(run, level, text, stream="log")
    return AttemptResult(State.SUCCESS)


def return_attempt(
    task: ReturnTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    variables = ctx.variables(run, task, scope)
    value = ctx.renderer.render(task.format or "", variables, where=ctx.where(task))
    return AttemptResult(State.SUCCESS, outputs={"value": value})


def output_values_attempt(
    task: OutputValuesTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    variables = ctx.variables(run, task, scope)
    values = ctx.renderer.render_value(task.values, variables, where=ctx.where(task))
    return AttemptResult(State.SUCCESS, outputs={"values": values})


def fail_attempt(
    task: FailTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    """Kestra's Fail: with a condition, fail only when it holds; without, always."""
    variables = ctx.variables(run, task, scope)
    where = ctx.where(task)
    message = ctx.renderer.render(task.errorMessage, variables, where=where)
    if task.condition is not None:
        condition = task.condition
        if isinstance(condition, str):
            condition = ctx.renderer.render(condition, variables, where=where)
        if not kestra_truthy(condition):
            return AttemptResult(State.SUCCESS)
        ctx.log(run, Level.ERROR, message)
        return AttemptResult(State.FAILED, f"Fail on a condition: {message}")
    ctx.log(run, Level.ERROR, message)
    return AttemptResult(State.FAILED, message)


HANDLES: dict[type[Any], Handler[Any]] = {
    m.LogTask: with_attempts(log_attempt),
    m.ReturnTask: with_attempts(return_attempt),
    m.OutputValuesTask: with_attempts(output_values_attempt),
    m.FailTask: with_attempts(fail_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
