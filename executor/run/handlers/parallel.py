"""Parallel and Dag: children at once, within ``concurrent``, failing as ``onChildFailure`` says."""

from __future__ import annotations

from executor.flow.model import DagTask, ParallelTask, Task
from executor.model import State, TaskRun
from executor.run.block import close_block, fold
from executor.run.cancel import CancelScope
from executor.run.concurrency import Unit, run_units
from executor.run.context import RunContext
from executor.run.scope import Scope


def _unit(task: Task, scope: Scope, ctx: RunContext, depends: list[str] | None = None) -> Unit:
    from executor.run.runner import run_task

    def work(cancel: CancelScope) -> State:
        return run_task(task, scope.with_cancel(cancel), ctx)

    return Unit(task.id, work, tuple(depends or ()))


def run_parallel(task: ParallelTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    children = scope.under(run)
    units = [_unit(child, children, ctx) for child in task.tasks]
    finished = run_units(
        units,
        limit=task.concurrent,
        on_failure=task.onChildFailure,
        cancel=scope.cancel,
        name=task.id,
    )
    state = fold(finished.states.values())
    return close_block(state, task.errors, task.finally_, children, ctx)


def run_dag(task: DagTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    children = scope.under(run)
    units = [_unit(node.task, children, ctx, node.dependsOn) for node in task.tasks]
    finished = run_units(
        units,
        limit=task.concurrent,
        on_failure=task.onChildFailure,
        cancel=scope.cancel,
        name=task.id,
    )
    state = fold(finished.states.values())
    if finished.not_started and state not in (State.FAILED, State.KILLED, State.CANCELLED):
        state = State.FAILED  # a dependency never ended well, so its dependents could not run
    return close_block(state, task.errors, task.finally_, children, ctx)
