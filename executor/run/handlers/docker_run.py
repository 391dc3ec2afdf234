"""``docker.Run``: the image's own command, as one exec on the workspace.

Kestra starts a container whose entrypoint is ``entryPoint`` (else the image's ENTRYPOINT) and
whose CMD is ``commands`` (else the image's CMD, unless ``entryPoint`` was given), on the task's
working directory. Here the same argv runs as one exec in the WorkingDirectory's container for
the image (a WorkingDirectory of one task when the task stands alone), under ``exec`` so that
its exit code, output and signals are the command's own; ``inputFiles``, ``namespaceFiles``,
``outputFiles``, ``env``, ``timeout`` and kills work as for every script task.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from executor.engine.api import ImageCommand
from executor.errors import ExecutorError
from executor.flow.tasks_docker import DockerRunTask
from executor.model import Attempt, Level, State, TaskRun
from executor.run.context import RunContext
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.script import PlainScript, Render, run_script
from executor.run.handlers.workdir import in_own_workdir
from executor.run.scope import Scope

_NO_COMMAND = ImageCommand((), ())


class RunRefused(ExecutorError):
    """docker.Run cannot start what it was asked to (no command, another engine)."""


def container_argv(
    entry_point: Sequence[str], commands: Sequence[str], image: ImageCommand
) -> list[str]:
    """What Docker runs: an entrypoint given replaces the image's and drops its CMD; commands
    given replace the CMD."""
    if entry_point:
        return [*entry_point, *commands]
    return [*image.entrypoint, *(commands or image.cmd)]


class RunKind(PlainScript):
    """Turns docker.Run's arguments into the one line the exec runs."""

    def __init__(self, run: TaskRun, ctx: RunContext) -> None:
        self.run = run
        self.ctx = ctx

    def commands(self, task: Any, commands: list[str], render: Render) -> list[str]:
        entry_point = [render(part) for part in task.entryPoint or []]
        image = _NO_COMMAND if entry_point else self._image_command()
        argv = container_argv(entry_point, commands, image)
        if not argv:
            raise RunRefused(
                f"the image {task.containerImage} has no ENTRYPOINT or CMD: give 'commands'"
                " (or 'entryPoint')"
            )
        return ["exec " + shlex.join(argv)]

    def _image_command(self) -> ImageCommand:
        if self.run.image_id is None:
            raise RunRefused("the task's image is not resolved: give 'commands' (or 'entryPoint')")
        return self.ctx.backend.image_command(self.run.image_id)


def _ignored_options(task: DockerRunTask, run: TaskRun, ctx: RunContext) -> None:
    """Say which of Kestra's options are not acted on, as for the Docker task runner."""
    if task.volumes:
        ctx.log(
            run,
            Level.WARN,
            "'volumes' are not mounted (host paths stay out of task containers here, as in"
            " Kestra unless its configuration enables them): pass files with 'inputFiles'",
        )
    if task.privileged:
        ctx.log(run, Level.WARN, "'privileged' is ignored: task containers are never privileged")
    if task.extraHosts:
        ctx.log(run, Level.WARN, "'extraHosts' is ignored")
    if task.config is not None:
        ctx.log(run, Level.WARN, "'config' is not read: give registry credentials in 'credentials'")


def docker_run_attempt(
    task: DockerRunTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    """One attempt of ``docker.Run``."""
    where = ctx.where(task)
    try:
        if task.host:
            raise RunRefused("'host': containers run on this executor's own engine")
        if attempt.number == 1:
            _ignored_options(task, run, ctx)
        return run_script(task, run, attempt, scope, ctx, RunKind(run, ctx))
    except RunRefused as exc:
        ctx.log(run, Level.ERROR, exc.message, attempt=attempt.number)
        return AttemptResult(State.FAILED, f"{where}: {exc.message}")


HANDLES: dict[type[Any], Handler[Any]] = {
    DockerRunTask: in_own_workdir(with_attempts(docker_run_attempt)),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
