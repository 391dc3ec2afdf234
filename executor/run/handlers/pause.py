"""Pause: wait for a duration, or keep the execution PAUSED until ``executor resume``."""

from __future__ import annotations

import time
from typing import Any

from executor.errors import ExecutorError, FlowError
from executor.flow import model as m
from executor.flow.model import PauseTask
from executor.model import Level, State, TaskRun
from executor.run.block import run_block
from executor.run.context import RunContext
from executor.run.durations import resolve_duration
from executor.run.handlers.attempts import Handler
from executor.run.inputs import resolve_inputs
from executor.run.scope import Scope

_TICK = 0.25


def run_pause(task: PauseTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    duration = resolve_duration(
        task.pauseDuration or task.delay, "pauseDuration", task, run, scope, ctx
    )
    if duration is None:  # what `executor resume`, the API and the UI check a resume against
        run.resume_inputs = [
            i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in task.onResume
        ]
    ctx.set_state(run, State.PAUSED)
    if duration is not None:
        state = _wait_duration(task, run, scope, ctx, duration.total_seconds())
    else:
        state = _wait_for_resume(task, run, scope, ctx)
    if state != State.RUNNING:
        return state
    ctx.set_state(run, State.RUNNING)
    if task.tasks:  # deprecated, still honoured: they run once resumed
        return run_block(task.tasks, task.errors, task.finally_, scope.under(run), ctx)
    return State.SUCCESS


def _wait_duration(
    task: PauseTask, run: TaskRun, scope: Scope, ctx: RunContext, seconds: float
) -> State:
    """Sleep ``seconds`` (a cancel cuts it short); then ``behavior`` applies."""
    ctx.log(run, Level.INFO, f"paused for {seconds:g}s")
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if scope.cancel.cancelled:
            return scope.cancel.state or State.KILLED
        ctx.sleep(min(_TICK, left))
    behavior = task.behavior
    ctx.log(run, Level.INFO, f"pause over: {behavior}")
    if behavior == "WARN":
        return State.WARNING
    if behavior == "FAIL":
        run.reason = "the pause ended (behavior: FAIL)"
        return State.FAILED
    if behavior == "CANCEL":
        run.reason = "the pause ended (behavior: CANCEL)"
        return State.CANCELLED
    return State.RUNNING


def _wait_for_resume(task: PauseTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    """PAUSED in the records until resumed from elsewhere; ``timeout`` fails it, as in Kestra."""
    if ctx.hooks is None:
        raise FlowError("a Pause without a duration needs the record store to be resumed")
    execution = ctx.execution
    with ctx.lock:
        execution.state.to(State.PAUSED)
    ctx.emit_execution()
    timeout = resolve_duration(task.timeout, "timeout", task, run, scope, ctx)
    deadline = timeout.total_seconds() if timeout else None
    ctx.log(
        run,
        Level.WARN,
        f"paused: resume with `executor resume {execution.id}`"
        + (f" (fails after {deadline:g}s)" if deadline else ""),
    )
    while True:
        given = ctx.hooks.wait_for_resume(execution, run, scope.cancel, deadline)
        if given is None:
            if scope.cancel.cancelled:
                return scope.cancel.state or State.KILLED
            run.reason = "not resumed before the pause's timeout"
            _running_again(ctx)
            return State.FAILED
        try:
            values = resolve_inputs(list(task.onResume), given)
        except ExecutorError as exc:
            ctx.log(run, Level.ERROR, f"resume refused: {exc.message}; still paused")
            continue
        break
    with ctx.lock:
        run.outputs["onResume"] = values
    ctx.set_outputs(run, scope, dict(run.outputs))
    ctx.log(run, Level.INFO, "resumed")
    _running_again(ctx)
    return State.RUNNING


def _running_again(ctx: RunContext) -> None:
    with ctx.lock:
        ctx.execution.state.to(State.RUNNING)
    ctx.emit_execution()


HANDLES: dict[type[Any], Handler[Any]] = {
    m.PauseTask: run_pause,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
