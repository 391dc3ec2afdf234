"""Parallel and Dag: children at once, within ``concurrent``, failing as ``onChildFailure`` says."""

from __future__ import annotations

from typing import Any

from executor.flow import model as m
from executor.flow.model import DagTask, ParallelTask, Task
from executor.model import State, TaskRun
from executor.run.block import close_block, fold
from executor.run.cancel import CancelScope
from executor.run.concurrency import Unit, run_units
from executor.run.context import RunContext
from executor.run.handlers.attempts import Handler
from executor.run.scope import Scope


def _unit(task: Task, scope: Scope, ctx: RunContext, depends: list[str] | None = None) -> Unit:
    def work(cancel: CancelScope) -> State:
        return ctx.run_task(task, scope.with_cancel(cancel))

    return Unit(task.id, work, tuple(depends or ()))


def run_parallel(task: ParallelTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    return _fan_out(task, [(child, []) for child in task.tasks], run, scope, ctx)


def run_dag(task: DagTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    return _fan_out(task, [(n.task, n.dependsOn) for n in task.tasks], run, scope, ctx)


def _fan_out(
    task: ParallelTask | DagTask,
    children: list[tuple[Task, list[str]]],
    run: TaskRun,
    scope: Scope,
    ctx: RunContext,
) -> State:
    inner = scope.under(run)
    finished = run_units(
        [_unit(child, inner, ctx, depends) for child, depends in children],
        limit=task.concurrent,
        on_failure=task.onChildFailure,
        cancel=scope.cancel,
        name=task.id,
    )
    state = fold(finished.states.values())
    if finished.not_started and state not in (State.FAILED, State.KILLED, State.CANCELLED):
        state = State.FAILED  # a dependency never ended well, so its dependents could not run
    return close_block(state, task.errors, task.finally_, inner, ctx)


HANDLES: dict[type[Any], Handler[Any]] = {
    m.ParallelTask: run_parallel,
    m.DagTask: run_dag,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
