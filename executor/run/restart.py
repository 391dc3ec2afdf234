"""Restart and replay: which task runs of an ended execution are kept, which run again.

Both build an execution whose task runs are filled in before it runs; the runner then walks the
flow as always and, for each task, takes the task run found here instead of creating one
(:class:`EarlierRuns`): a run that ended well is not run again (its outputs are published as
they were), any other one runs again under its own id, as a new attempt.

- **Restart** (Kestra's ``ExecutionService.restart``): the same execution. The failed (or killed)
  task runs and the flowable task runs above them are RESTARTED; runs that ended well keep their
  state and outputs; the tasks after them run as they would have. A WorkingDirectory is the
  unit: its container is gone, so if any of its children failed, the whole WorkingDirectory runs
  again (its children's task runs are dropped and made anew). Task runs of ``errors`` and
  ``finally`` branches are dropped too: they answer the new outcome.
- **Replay** (``ExecutionService.replay``): a new execution that starts at one task run. The
  task runs of the tasks before it (in the flow's order) are copied with their outputs, under new
  ids; the flowable task runs above it are RESTARTED; it and everything after it run again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from executor.errors import NotFoundError, UsageError
from executor.flow.model import Flow, Task, WorkingDirectoryTask
from executor.flow.walk import walk
from executor.model import Execution, State, StateHistory, TaskRun, new_id

RESTARTABLE = (State.FAILED, State.KILLED)
DONE = (State.SUCCESS, State.WARNING, State.SKIPPED)
"""A task run that ended so is not run again; any other state runs again."""
REPLAY_LABEL = "system.replay"
RESTARTED_LABEL = "system.restarted"


class NotRestartable(UsageError):
    """The execution is not in a state it can be restarted from (a 409 on the server)."""


@dataclass
class Restart:
    """A restart, planned: the execution as it runs again, and the task runs it drops."""

    execution: Execution
    dropped: list[str] = field(default_factory=list)


def plan_restart(execution: Execution, flow: Flow) -> Restart:
    """The execution, RESTARTED: what failed (and what holds it) runs again, the rest is kept.

    Raises:
        NotRestartable: the execution is not FAILED or KILLED.
    """
    state = execution.state.current
    if state not in RESTARTABLE:
        raise NotRestartable(
            f"execution {execution.id} is {state.value}: only a FAILED or KILLED execution"
            " can be restarted (replay it to run it again from a task)"
        )
    tree = _Tree(execution.task_runs)
    failed = [r for r in execution.task_runs if r.state.current not in DONE]
    again = tree.with_ancestors(failed)
    dropped = set(tree.below(_branch_roots(execution.task_runs, flow)))
    for run in execution.task_runs:
        if run.id in again and _is_workdir(run, flow):
            dropped |= set(tree.descendants(run.id))
    kept: list[TaskRun] = []
    for run in execution.task_runs:
        if run.id in dropped:
            continue
        if run.id in again:
            run.state.to(State.RESTARTED)
            run.reason = None
        kept.append(run)
    execution.task_runs = kept
    execution.state.to(State.RESTARTED)
    execution.reason = None
    execution.outputs = {}  # the flow's outputs are rendered again at its new end
    execution.labels[RESTARTED_LABEL] = "true"
    return Restart(execution, sorted(dropped))


def plan_replay(
    execution: Execution,
    flow: Flow,
    task_run_id: str | None = None,
    *,
    task_id: str | None = None,
    revision: int | None = None,
) -> Execution:
    """A new execution of the same flow and inputs that starts at one task run (by its id, or
    the first run of ``task_id``); without either, from the start.

    Raises:
        NotFoundError: no such task run (or task) in the execution.
        NotRestartable: the execution has not ended.
    """
    if not execution.state.current.terminal:
        raise NotRestartable(
            f"execution {execution.id} is {execution.state.current.value}: replay an ended"
            " execution"
        )
    replay = Execution(
        execution.namespace,
        execution.flow_id,
        dict(execution.inputs),
        labels={**execution.labels, REPLAY_LABEL: "true"},
        trigger=execution.trigger,
        parent_id=execution.parent_id,
        flow_revision=revision if revision is not None else execution.flow_revision,
        original_id=execution.original_id or execution.id,
        flow_file=execution.flow_file,
    )
    replay.labels.pop(RESTARTED_LABEL, None)
    if task_run_id is None and task_id is None:
        return replay
    start = _start_run(execution, task_run_id, task_id)
    tree = _Tree(execution.task_runs)
    order = {visit.task.id: n for n, visit in enumerate(walk(flow))}
    start_rank = order.get(start.task_id)
    if start_rank is None:
        raise NotFoundError(f"task '{start.task_id}' is not in the flow")
    again = tree.with_ancestors([start])
    dropped = set(tree.below(_branch_roots(execution.task_runs, flow)))
    dropped |= set(tree.descendants(start.id)) | {start.id}
    for run in execution.task_runs:
        if run.id in again and run.id != start.id and _is_workdir(run, flow):
            dropped |= set(tree.descendants(run.id))  # the WorkingDirectory runs again whole
        elif run.id not in again and order.get(run.task_id, start_rank) >= start_rank:
            dropped.add(run.id)  # after the start in the flow: runs again
    ids = {run.id: new_id() for run in execution.task_runs}
    for run in execution.task_runs:
        if run.id in dropped or (run.parent_task_run_id and run.parent_task_run_id in dropped):
            dropped.add(run.id)
            continue
        copy = _copy(run, ids)
        if run.id in again:
            copy.state = StateHistory(State.RESTARTED, [(State.RESTARTED, replay.state.start)])
            copy.reason = None
        replay.task_runs.append(copy)
    return replay


class EarlierRuns:
    """The task runs an execution held before it ran (a restart, a replay): the runner takes
    each one back as its task comes, instead of creating a new one. Thread-safe."""

    def __init__(self, runs: Iterable[TaskRun]) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[tuple[Any, ...], list[TaskRun]] = {}
        for run in runs:
            key = _key(run.task_id, run.parent_task_run_id, run.value, run.iteration)
            self._waiting.setdefault(key, []).append(run)

    def take(
        self, task_id: str, parent_id: str | None, value: Any, iteration: int | None
    ) -> TaskRun | None:
        """The earlier run of this task at this place, once; ``None`` when it never ran."""
        with self._lock:
            found = self._waiting.get(_key(task_id, parent_id, value, iteration))
            return found.pop(0) if found else None


def value_path(run: TaskRun, by_id: dict[str, TaskRun]) -> list[Any]:
    """The loop values that key ``run``'s outputs, root first (as ``Scope.value_path``)."""
    chain: list[TaskRun] = []
    current: TaskRun | None = run
    while current is not None:
        chain.append(current)
        current = by_id.get(current.parent_task_run_id or "")
    return [r.value for r in reversed(chain) if r.value is not None]


def _key(task_id: str, parent_id: str | None, value: Any, iteration: int | None) -> tuple[Any, ...]:
    return (task_id, parent_id, json.dumps(value, sort_keys=True, default=str), iteration)


def _start_run(execution: Execution, task_run_id: str | None, task_id: str | None) -> TaskRun:
    for run in execution.task_runs:
        if (task_run_id is not None and run.id == task_run_id) or (
            task_run_id is None and run.task_id == task_id
        ):
            return run
    named = f"task run {task_run_id!r}" if task_run_id else f"task {task_id!r}"
    raise NotFoundError(f"execution {execution.id} has no {named}")


def _copy(run: TaskRun, ids: dict[str, str]) -> TaskRun:
    """``run`` under its new id (and its parent's), states and outputs as they were."""
    return TaskRun(
        task_id=run.task_id,
        task_type=run.task_type,
        parent_task_run_id=ids.get(run.parent_task_run_id or "", run.parent_task_run_id),
        id=ids[run.id],
        state=StateHistory(run.state.current, list(run.state.history)),
        attempts=list(run.attempts),
        outputs=dict(run.outputs),
        metrics=list(run.metrics),
        image_id=run.image_id,
        reason=run.reason,
        value=run.value,
        iteration=run.iteration,
    )


def _is_workdir(run: TaskRun, flow: Flow) -> bool:
    return isinstance(_tasks(flow).get(run.task_id), WorkingDirectoryTask)


def _tasks(flow: Flow) -> dict[str, Task]:
    return {visit.task.id: visit.task for visit in walk(flow)}


def _branch_roots(runs: list[TaskRun], flow: Flow) -> list[str]:
    """The task runs of ``errors`` and ``finally`` tasks (anywhere in the flow)."""
    branch = {v.task.id for v in walk(flow) if v.branch in ("errors", "finally")}
    return [r.id for r in runs if r.task_id in branch]


class _Tree:
    """Task runs by parent."""

    def __init__(self, runs: list[TaskRun]) -> None:
        self.by_id = {r.id: r for r in runs}
        self.children: dict[str, list[str]] = {}
        for run in runs:
            if run.parent_task_run_id:
                self.children.setdefault(run.parent_task_run_id, []).append(run.id)

    def with_ancestors(self, runs: list[TaskRun]) -> set[str]:
        found: set[str] = set()
        for run in runs:
            current: TaskRun | None = run
            while current is not None and current.id not in found:
                found.add(current.id)
                current = self.by_id.get(current.parent_task_run_id or "")
        return found

    def descendants(self, run_id: str) -> list[str]:
        found: list[str] = []
        waiting = list(self.children.get(run_id, []))
        while waiting:
            child = waiting.pop()
            found.append(child)
            waiting.extend(self.children.get(child, []))
        return found

    def below(self, roots: list[str]) -> list[str]:
        """``roots`` and everything under them."""
        found = list(roots)
        for root in roots:
            found += self.descendants(root)
        return found
