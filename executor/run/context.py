"""``RunContext``: one execution's model, listeners, outputs and services behind one lock.

Branches of a Parallel run on threads of their own; every change to the execution, every event
and every log line goes through here, so listeners (the store, the live view) see one ordered
stream and never a half-changed model.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from executor.engine.api import Backend, RegistryAuth
from executor.errors import ExecutorError
from executor.flow.base import TaskBase
from executor.flow.loaded import LoadedFlow
from executor.flow.model import Task
from executor.flow.secrets import Secrets
from executor.flow.tasks_exec import ExecScript
from executor.flow.template import Renderer
from executor.flow_repository import FlowRepository
from executor.images import ResolvedImage
from executor.model import (
    Execution,
    Level,
    LogBatch,
    LogLine,
    RunListener,
    State,
    TaskRun,
    now,
)
from executor.model.subflow import started_by
from executor.run.cancel import CancelScope
from executor.run.restart import DONE, EarlierRuns, value_path
from executor.run.scope import Scope
from executor.run.script_vars import script_variables
from executor.run.template_functions import run_functions
from executor.settings import Settings
from executor.store.api import Services
from executor.store.files.artifacts import Reader
from executor.workspace.hooks import WorkspaceHooks

_ERROR_LOGS_KEPT = 1000  # what errorLogs() can return; older ERROR lines are in the records


class ImageLookup(Protocol):
    """Resolves an image reference to a local image, pulling (with ``auth``) when allowed."""

    def __call__(
        self, ref: str, pull_policy: str, auth: RegistryAuth | None = None
    ) -> ResolvedImage: ...


class Hooks(Protocol):
    """What a run asks of the application around it: other flows, and a paused run's resume."""

    def run_subflow(self, request: SubflowRequest) -> Execution:
        """Run another flow as its own execution (raises FlowError when it cannot be found)."""
        ...

    def wait_for_resume(
        self, execution: Execution, run: TaskRun, cancel: CancelScope, timeout: float | None
    ) -> dict[str, str] | None:
        """Block until the paused run is resumed (its raw inputs); ``None`` on cancel or timeout."""
        ...


@dataclass(frozen=True)
class SubflowRequest:
    """A flow to run on behalf of a Subflow task.

    Attributes:
        depth: how deep the child is in its chain of subflows (a flow's own execution is 0).
        cancel: the Subflow task's scope: a child waited for is stopped with it.
        iteration: the batch of a ForEachItem the child runs (``None`` for a Subflow).
    """

    namespace: str
    flow_id: str
    revision: int | None
    inputs: dict[str, Any]
    labels: dict[str, str]
    parent: Execution
    task_run: TaskRun
    wait: bool
    where: str
    depth: int
    cancel: CancelScope
    iteration: int | None = None


def reader_of(execution: Execution) -> Reader:
    """The execution as a reader of stored files; a subflow's parent is the execution whose
    Subflow task started it (its ``trigger``, as Kestra records it)."""
    return Reader(execution.namespace, execution.flow_id, execution.id, started_by(execution))


TaskRunner = Callable[[Task, Scope, "RunContext"], State]
"""Runs one task in a scope to its final state (``run.runner.run_task``)."""


def _not_running(task: Task, scope: Scope, ctx: RunContext) -> State:
    raise ExecutorError(f"task '{task.id}' asked to run outside a run (run_execution starts one)")


class RunContext:
    """Everything one execution's handlers share."""

    def __init__(
        self,
        *,
        loaded: LoadedFlow,
        execution: Execution,
        inputs: dict[str, Any],
        settings: Settings,
        backend: Backend,
        resolve_image: ImageLookup,
        secrets: Secrets,
        listeners: Sequence[RunListener] = (),
        services: Services | None = None,
        workspace: WorkspaceHooks | None = None,
        hooks: Hooks | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cancel: CancelScope | None = None,
        flow_repository: FlowRepository | None = None,
    ) -> None:
        self.loaded = loaded
        self.execution = execution
        self.inputs = inputs
        self.settings = settings
        self.backend = backend
        self.resolve_image = resolve_image
        self.secrets = secrets
        self._error_logs: deque[LogLine] = deque(maxlen=_ERROR_LOGS_KEPT)
        self.reader = reader_of(execution)  # what its tasks may read of the artifact store
        # every store as this execution uses it (a worker's: through the server, as this one)
        self.services = services.for_reader(self.reader) if services is not None else None
        self.renderer = Renderer(
            secrets,
            functions=run_functions(
                self.services, lambda: list(self._error_logs), reader=self.reader
            ),
        )
        self.listeners = list(listeners)
        self.workspace = workspace
        self.hooks = hooks
        self.sleep = sleep
        self.cancel = cancel or CancelScope()  # given: the server kills the run through it
        self.lock = threading.RLock()
        self._outputs: dict[str, Any] = {}
        self._flow_repository = flow_repository
        self._task_runner: TaskRunner = _not_running
        # a restart or a replay: the task runs it held before, taken back as their tasks come
        self._earlier = EarlierRuns(execution.task_runs) if execution.task_runs else None

    # ----- running tasks

    def use_runner(self, runner: TaskRunner) -> None:
        """Run tasks with ``runner`` (``run_execution`` says, as the run starts)."""
        self._task_runner = runner

    def run_task(self, task: Task, scope: Scope) -> State:
        """Run ``task`` in ``scope`` to its final state: how a handler runs its children."""
        return self._task_runner(task, scope, self)

    # ----- the stores a task may read and change

    def flow_repository(self) -> FlowRepository:
        """Where this run's flows are kept (a directory, or the server's store).

        Raises:
            ExecutorError: the run has none: a remote worker reaches the server's stores, not
                its flows.
        """
        if self._flow_repository is None:
            raise ExecutorError(
                "this run has no flows of its own to read or change (a remote worker reaches the"
                " server's stores, not its flows): run it on the server or with `executor run`"
            )
        return self._flow_repository

    def stores(self) -> Services:
        """The stores this run reads and changes (KV, records, files), as this execution.

        Raises:
            ExecutorError: the run was started without them (a bare test context).
        """
        if self.services is None:
            raise ExecutorError("this run has no stores to read or change")
        return self.services

    # ----- the model, changed under the lock

    def emit_execution(self) -> None:
        with self.lock:
            for listener in self.listeners:
                listener.execution_changed(self.execution)

    def new_task_run(self, task: Task, scope: Scope) -> TaskRun:
        """Create and announce the task run of ``task`` in ``scope``; in a restart or a replay,
        the run it had there before (see :meth:`ran_before`)."""
        parent = scope.parent
        if self._earlier is not None:
            parent_id = parent.id if parent else None
            earlier = self._earlier.take(task.id, parent_id, scope.value, scope.iteration)
            if earlier is not None:
                return earlier
        run = TaskRun(task.id, task.type, parent.id if parent else None)
        run.value, run.iteration = scope.value, scope.iteration
        with self.lock:
            self.execution.task_runs.append(run)
            self._emit_task(run)
        return run

    @staticmethod
    def ran_before(run: TaskRun) -> bool:
        """Whether ``run`` ended well before this run began (a restart keeps it as it is)."""
        return run.state.current in DONE

    def announce_earlier(self) -> None:
        """Tell the listeners of the task runs held from before (in order: a recorder numbers
        them so), and publish the outputs of those that ended well for the tasks after them."""
        if self._earlier is None:
            return
        with self.lock:
            by_id = {r.id: r for r in self.execution.task_runs}
            for run in self.execution.task_runs:
                self._emit_task(run)
                if self.ran_before(run) and run.outputs:
                    path = value_path(run, by_id)
                    self._outputs[run.task_id] = _with(
                        self._outputs.get(run.task_id), path, dict(run.outputs)
                    )

    def add_task_run(self, run: TaskRun) -> None:
        """Record and announce a task run made by a task itself (dbt's one per model)."""
        with self.lock:
            self.execution.task_runs.append(run)
            self._emit_task(run)

    def kv_value(self, namespace: str, key: str) -> tuple[bool, Any]:
        """The live value of ``key`` in ``namespace``'s KV store: (found, value)."""
        entry = self.stores().kv.get(namespace, key)
        return (False, None) if entry is None else (True, entry.value)

    def set_state(self, run: TaskRun, state: State, reason: str | None = None) -> None:
        with self.lock:
            run.state.to(state)
            if reason:
                run.reason = self.secrets.mask(reason)
            self._emit_task(run)

    def changed(self, run: TaskRun) -> None:
        """Tell the listeners ``run`` changed (attempts, outputs)."""
        with self.lock:
            self._emit_task(run)

    def _emit_task(self, run: TaskRun) -> None:
        for listener in self.listeners:
            listener.task_changed(self.execution, run)

    def log(
        self,
        run: TaskRun | None,
        level: Level,
        message: str,
        stream: str = "executor",
        attempt: int | None = None,
    ) -> None:
        line = LogLine(
            now(),
            self.execution.id,
            run.task_id if run else None,
            run.id if run else None,
            attempt,
            stream,
            level,
            self.secrets.mask(message),
        )
        with self.lock:
            if level == Level.ERROR:
                self._error_logs.append(line)
            for listener in self.listeners:
                listener.log(line)

    def log_many(
        self,
        run: TaskRun | None,
        level: Level,
        messages: list[str],
        stream: str = "executor",
        attempt: int | None = None,
    ) -> None:
        """:meth:`log` for lines that arrived together: one timestamp, one lock, one mask pass.

        A listener with a ``log_batch(batch)`` method gets them as one :class:`LogBatch`, one
        with ``log_many(lines)`` as a list; others get each line through ``log``.
        """
        if not messages:
            return
        task_id, run_id = (run.task_id, run.id) if run else (None, None)
        batch = LogBatch(
            now(),
            self.execution.id,
            task_id,
            run_id,
            attempt,
            stream,
            level,
            self.secrets.mask_all(messages),
        )
        lines: list[LogLine] | None = batch.lines() if level == Level.ERROR else None
        with self.lock:
            if lines is not None:
                self._error_logs.extend(lines)
            for listener in self.listeners:
                whole = getattr(listener, "log_batch", None)
                if whole is not None:
                    whole(batch)
                    continue
                lines = lines if lines is not None else batch.lines()
                many = getattr(listener, "log_many", None)
                if many is not None:
                    many(lines)
                else:
                    for line in lines:
                        listener.log(line)

    def flush_listeners(self) -> None:
        """Wait until listeners that write asynchronously (the record store) have caught up."""
        for listener in self.listeners:
            flush = getattr(listener, "flush", None)
            if callable(flush):
                flush()

    # ----- outputs, keyed by loop values

    def set_outputs(self, run: TaskRun, scope: Scope, outputs: dict[str, Any]) -> None:
        """Publish ``outputs.<task id>``, nested under the loop values above it (root first).

        Copy on write: a template rendering on another thread keeps the snapshot it took.
        """
        path = scope.value_path(run)
        with self.lock:
            self._outputs[run.task_id] = _with(self._outputs.get(run.task_id), path, outputs)

    def outputs(self) -> dict[str, Any]:
        """A snapshot of every task's outputs so far."""
        with self.lock:
            return dict(self._outputs)

    # ----- templates

    def where(self, task: TaskBase) -> str:
        return self.loaded.task_where(task.id)

    def variables(
        self, run: TaskRun | None = None, task: TaskBase | None = None, scope: Scope | None = None
    ) -> dict[str, Any]:
        """The template context of a task run, Kestra's names."""
        flow, execution = self.loaded.flow, self.execution
        ctx: dict[str, Any] = {
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision or 1},
            "execution": {
                "id": execution.id,
                "startDate": execution.state.start,
                "originalId": execution.original_id or execution.id,
            },
            "inputs": self.inputs,
            "vars": flow.variables,
            "outputs": self.outputs(),
            "labels": execution.labels,
            "workingDir": self.settings.workspace_path,
            "envs": dict(self.settings.envs),
        }
        if execution.trigger:
            ctx["trigger"] = execution.trigger.get("variables", {})
        if task is not None and run is not None:
            ctx["task"] = {"id": task.id, "type": task.type}
            taskrun: dict[str, Any] = {
                "id": run.id,
                "startDate": run.state.start,
                "attemptsCount": attempts_before(run),
            }
            if run.parent_task_run_id:
                taskrun["parentId"] = run.parent_task_run_id
            if run.value is not None:
                taskrun["value"] = run.value
            if run.iteration is not None:
                taskrun["iteration"] = run.iteration
            worker = scope.workdir_run if scope is not None else None
            if worker is not None and worker is not run:
                # Kestra runs a WorkingDirectory's children in its worker task: they see its
                # task run as `workerTaskrun`, and its loop value as their own.
                ctx["workerTaskrun"] = _worker_taskrun(worker)
                if "value" not in taskrun and worker.value is not None:
                    taskrun["value"] = worker.value
                    if worker.iteration is not None:
                        taskrun.setdefault("iteration", worker.iteration)
            ctx["taskrun"] = taskrun
            if isinstance(task, ExecScript):
                ctx.update(script_variables(task, run.id, self.settings.workspace_path))
            if scope is not None:
                parents = self._parents(scope)
                ctx["parents"] = parents
                if parents:
                    ctx["parent"] = parents[0]
                ctx["_each_values"] = scope.value_path(run)
        return ctx

    def _parents(self, scope: Scope) -> list[dict[str, Any]]:
        """Ancestors nearest first, those with a value or outputs only (as Kestra lists them)."""
        found = []
        for run in reversed(scope.ancestors):
            entry: dict[str, Any] = {}
            if run.value is not None:
                entry["taskrun"] = {"value": run.value}
            if run.outputs:
                entry["outputs"] = dict(run.outputs)
            if entry:
                found.append(entry)
        return found


def _worker_taskrun(run: TaskRun) -> dict[str, Any]:
    found: dict[str, Any] = {"id": run.id, "startDate": run.state.start}
    if run.value is not None:
        found["value"] = run.value
    if run.iteration is not None:
        found["iteration"] = run.iteration
    return found


def attempts_before(run: TaskRun) -> int:
    """Kestra's ``taskrun.attemptsCount``: the attempts before the one running (0 at first)."""
    running = bool(run.attempts) and run.attempts[-1].state.current == State.RUNNING
    return len(run.attempts) - 1 if running else len(run.attempts)


def _with(tree: Any, path: list[Any], value: dict[str, Any]) -> Any:
    """``tree`` with ``value`` set at ``path`` (new dicts along the path, the rest shared)."""
    if not path:
        return value
    key = path[0] if isinstance(path[0], str) else str(path[0])
    base = dict(tree) if isinstance(tree, dict) else {}
    base[key] = _with(base.get(key), path[1:], value)
    return base
