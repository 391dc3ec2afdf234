"""WorkingDirectory: one volume, one container per image, children as execs inside it.

A script, Clone or LocalFiles task met outside any WorkingDirectory runs as a WorkingDirectory
of one (``in_own_workdir``), so retries of it land in the same container too.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

from executor.engine import labels as labelling
from executor.engine.api import ContainerOptions, Workdir, WorkdirSpec
from executor.engine.container_paths import KESTRA_MODULE
from executor.errors import ExecutorError
from executor.flow import model as m
from executor.flow.base import TaskBase
from executor.flow.model import Task, WorkingDirectoryTask
from executor.flow.tasks_exec import ExecScript
from executor.flow.walk import walk_task
from executor.model import Level, State, TaskRun
from executor.run.block import run_block
from executor.run.context import RunContext
from executor.run.handlers.attempts import Handler
from executor.run.handlers.images import container_options
from executor.run.scope import Scope
from executor.run.signals import deferred_interrupts

T = TypeVar("T", bound=Task)


def kestra_module() -> bytes:
    """The ``kestra`` Python module every container gets (outputs, metrics, logs)."""
    return resources.files("executor.run").joinpath("kestra/kestra.py").read_bytes()


class TaskJob:
    """A task run as the workspace layer sees it (``workspace.service.Job``)."""

    def __init__(self, task: TaskBase, run: TaskRun, scope: Scope, ctx: RunContext) -> None:
        flow = ctx.loaded.flow
        self.namespace, self.flow_id = flow.namespace, flow.id
        self.execution_id = ctx.execution.id
        self.task_id, self.task_run_id = run.task_id, run.id
        self.reader = ctx.reader
        self.where = ctx.where(task)
        self._task, self._run, self._scope, self._ctx = task, run, scope, ctx
        self._variables: dict[str, Any] | None = None

    def log(self, level: Level, message: str) -> None:
        self._ctx.log(self._run, level, message)

    def render(self, template: str) -> str:
        if self._variables is None:
            self._variables = self._ctx.variables(self._run, self._task, self._scope)
        return self._ctx.renderer.render(template, self._variables, where=self.where)

    def remember_secrets(self, *values: str | None) -> None:
        self._ctx.secrets.remember(*(v for v in values if v))

    def default_options(self) -> ContainerOptions:
        """The first script child's container, or the default shell image's."""
        wd = self._scope.workdir_task
        for visit in walk_task(wd, ()) if wd is not None else ():
            if isinstance(visit.task, ExecScript):
                return container_options(visit.task, self._run, self._scope, self._ctx)
        image = self._ctx.resolve_image(self._ctx.settings.default_shell_image, "IF_NOT_PRESENT")
        return ContainerOptions(image.image_id, pids_limit=self._ctx.settings.pids_limit or None)

    def known_options(self) -> tuple[ContainerOptions, ...]:
        """The containers the script children are known to need as the WorkingDirectory
        starts, in first-use order: each child's image and options rendered with what the run
        has now. A child whose image depends on what is not known yet (a task's output), or
        cannot be had yet, is left out: it says so itself when it runs."""
        wd = self._scope.workdir_task
        found: dict[ContainerOptions, None] = {}
        for visit in walk_task(wd, ()) if wd is not None else ():
            if not isinstance(visit.task, ExecScript):
                continue
            try:
                options = container_options(
                    visit.task, self._run, self._scope, self._ctx, record=False
                )
            except ExecutorError:
                continue
            found.setdefault(options, None)
        return tuple(found)


def run_working_directory(
    task: WorkingDirectoryTask, run: TaskRun, scope: Scope, ctx: RunContext
) -> State:
    def body(inner: Scope) -> State:
        children = inner.under(run)
        return run_block(task.tasks, task.errors, task.finally_, children, ctx)

    return _with_workdir(task, run, scope, ctx, body, own_run=True)


def in_own_workdir(handler: Handler[T]) -> Handler[T]:
    """``handler`` inside the current WorkingDirectory, or inside one of its own."""

    def run_somewhere(task: T, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
        if scope.workdir is not None:
            return handler(task, run, scope, ctx)
        alone = WorkingDirectoryTask.model_validate(
            {"id": task.id, "type": "io.kestra.plugin.core.flow.WorkingDirectory", "tasks": [task]}
        )
        return _with_workdir(alone, run, scope, ctx, lambda inner: handler(task, run, inner, ctx))

    return run_somewhere


def _with_workdir(
    task: WorkingDirectoryTask,
    run: TaskRun,
    scope: Scope,
    ctx: RunContext,
    body: Callable[[Scope], State],
    own_run: bool = False,
) -> State:
    own = run if own_run else None
    ahead = TaskJob(task, run, scope.inside(None, task, own), ctx)  # what the children will need
    spec = WorkdirSpec(
        labels=labelling.ownership(ctx.execution.id, task.id),
        workspace=ctx.settings.workspace_path,
        default_image=ahead.default_options,
        known_images=ahead.known_options,
        max_execs=ctx.settings.max_execs_per_container,
        files={KESTRA_MODULE: kestra_module()},
        env=ctx.settings.task_network.env,
        read_only_binds=ctx.settings.task_network.read_only_binds,
    )
    workdir: Workdir | None = None
    state = State.FAILED
    try:
        workdir = ctx.backend.open_workdir(spec)
        inner = scope.inside(workdir, task, own)
        job = TaskJob(task, run, inner, ctx)
        if ctx.workspace is not None:
            # Before any container starts: seeding may make the volume an overlay.
            ctx.workspace.before_children(job, workdir, task)
        _start_early(task, workdir)
        state = body(inner)
        if ctx.workspace is not None:
            state, files = ctx.workspace.after_children(job, workdir, task, state)
            if files is not None:
                with ctx.lock:
                    run.outputs["outputFiles"] = files
                ctx.set_outputs(run, scope, run.outputs)
    finally:
        if workdir is not None:
            with deferred_interrupts():
                problems = workdir.close()
            for problem in problems:
                ctx.log(run, Level.ERROR, f"cleanup: {problem}")
    return state


def _start_early(task: WorkingDirectoryTask, workdir: Workdir) -> None:
    """Start the first script child's container now, so concurrent first children do not
    all wait for it; a child whose image cannot be had yet reports that itself, later."""
    if not any(isinstance(v.task, ExecScript) for v in walk_task(task, ())):
        return
    try:
        workdir.any_container()
    except ExecutorError:
        return


HANDLES: dict[type[Any], Handler[Any]] = {
    m.WorkingDirectoryTask: run_working_directory,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
