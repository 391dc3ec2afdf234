"""Loops: ForEach, EachSequential, EachParallel; each direct child carries its value."""

from __future__ import annotations

import json
from typing import Any

from executor.errors import FlowError
from executor.flow import model as m
from executor.flow.model import EachParallelTask, EachSequentialTask, ForEachTask, Task
from executor.model import Level, State, TaskRun
from executor.run.block import close_block, fold, run_sequence
from executor.run.cancel import CancelScope
from executor.run.concurrency import Unit, run_units
from executor.run.context import RunContext
from executor.run.handlers.attempts import Handler
from executor.run.scope import Scope


def loop_values(raw: Any, task: Task, run: TaskRun, scope: Scope, ctx: RunContext) -> list[str]:
    """The values a loop runs over, as Kestra reads them: strings, de-duplicated, in order.

    Raises:
        FlowError: text that is not a JSON array, a null, or a nested list.
    """
    where = ctx.where(task)
    variables = ctx.variables(run, task, scope)
    if isinstance(raw, str):
        text = ctx.renderer.render(raw, variables, where=where)
        try:
            items = json.loads(text)
        except ValueError:
            raise FlowError(
                f"values must be a JSON array; got {text[:80]!r}", where=where
            ) from None
        if not isinstance(items, list):
            raise FlowError(f"values must be a JSON array; got {text[:80]!r}", where=where)
    else:
        items = [
            ctx.renderer.render(item, variables, where=where) if isinstance(item, str) else item
            for item in raw
        ]
    nulls = sum(1 for item in items if item is None)
    if nulls:
        raise FlowError(f"Found '{nulls}' null values on Each, with values={items}", where=where)
    values: list[str] = []
    for item in items:
        if isinstance(item, list):
            raise FlowError(f"Unknown value element type: a list ({item!r})", where=where)
        value = _as_value(item)
        if value not in values:
            values.append(value)
    return values


def _as_value(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, dict):
        return json.dumps(item, separators=(",", ":"))
    return str(item)


def _over_values(
    task: ForEachTask | EachSequentialTask,
    raw: Any,
    limit: int,
    run: TaskRun,
    scope: Scope,
    ctx: RunContext,
) -> State:
    """Each value's tasks in order; ``limit`` values at once (0: all)."""
    values = loop_values(raw, task, run, scope, ctx)
    if not values:
        ctx.log(run, Level.INFO, "no values: nothing to run")
    children = scope.under(run)

    def group(index: int, value: str) -> Unit:
        def work(cancel: CancelScope) -> State:
            inner = scope.with_cancel(cancel).under(run, value=value, iteration=index)
            return run_sequence(task.tasks, inner, ctx)

        return Unit(str(index), work)

    units = [group(i, v) for i, v in enumerate(values)]
    if limit == 1:
        states = []
        for unit in units:
            if scope.cancel.cancelled:
                break
            states.append(unit.work(scope.cancel))
            if states[-1].failed:
                break
        state = fold(states)
    else:
        finished = run_units(
            units, limit=limit, on_failure="FINISH", cancel=scope.cancel, name=task.id
        )
        state = fold(finished.states.values())
    return close_block(state, task.errors, task.finally_, children, ctx)


def run_for_each(task: ForEachTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    return _over_values(task, task.values, task.concurrencyLimit, run, scope, ctx)


def run_each_sequential(
    task: EachSequentialTask, run: TaskRun, scope: Scope, ctx: RunContext
) -> State:
    return _over_values(task, task.value, 1, run, scope, ctx)


def run_each_parallel(task: EachParallelTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    """Every (value, task) pair at once, ``concurrent`` at most; no order even within a value."""
    values = loop_values(task.value, task, run, scope, ctx)
    units = []
    for index, value in enumerate(values):
        for child in task.tasks:

            def work(
                cancel: CancelScope, child: Task = child, index: int = index, value: str = value
            ) -> State:
                inner = scope.with_cancel(cancel).under(run, value=value, iteration=index)
                return ctx.run_task(child, inner)

            units.append(Unit(f"{index}:{child.id}", work))
    finished = run_units(
        units, limit=task.concurrent, on_failure="FINISH", cancel=scope.cancel, name=task.id
    )
    state = fold(finished.states.values())
    return close_block(state, task.errors, task.finally_, scope.under(run), ctx)


HANDLES: dict[type[Any], Handler[Any]] = {
    m.ForEachTask: run_for_each,
    m.EachSequentialTask: run_each_sequential,
    m.EachParallelTask: run_each_parallel,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
