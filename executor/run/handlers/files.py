"""Tasks that move files in or out of the workspace: git Clone and LocalFiles."""

from __future__ import annotations

from typing import Any

from executor.errors import ExecutorError
from executor.flow import model as m
from executor.flow.model import CloneTask, LocalFilesTask
from executor.model import Attempt, State, TaskRun
from executor.run.context import RunContext
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.workdir import TaskJob, in_own_workdir
from executor.run.scope import Scope


def files_attempt(
    task: CloneTask | LocalFilesTask,
    run: TaskRun,
    attempt: Attempt,
    scope: Scope,
    ctx: RunContext,
) -> AttemptResult:
    assert scope.workdir is not None, "file tasks run inside a WorkingDirectory"
    if ctx.workspace is None:
        raise ExecutorError(f"{task.type} needs the workspace layer")
    job = TaskJob(task, run, scope, ctx)
    outputs = ctx.workspace.run_task(job, scope.workdir, task)
    return AttemptResult(State.SUCCESS, outputs=outputs or {})


HANDLES: dict[type[Any], Handler[Any]] = {
    m.CloneTask: in_own_workdir(with_attempts(files_attempt)),
    m.LocalFilesTask: in_own_workdir(with_attempts(files_attempt)),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
