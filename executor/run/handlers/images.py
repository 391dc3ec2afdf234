"""Which container a script task runs in: its image, resolved, and its Docker options."""

from __future__ import annotations

from executor.engine.workdir import ContainerOptions
from executor.errors import ImageError
from executor.flow.model import ScriptTask
from executor.model import TaskRun
from executor.run.context import RunContext
from executor.run.scope import Scope


def container_options(
    task: ScriptTask, run: TaskRun, scope: Scope, ctx: RunContext
) -> ContainerOptions:
    """The container options (and resolved image) a script task asks for."""
    settings = ctx.settings
    ref = task.image
    if ref is None:
        ref = settings.default_python_image if task.is_python else settings.default_shell_image
    where = ctx.where(task)
    ref = ctx.renderer.render(ref, ctx.variables(run, task, scope), where=where)
    opts = task.docker_options
    try:
        image_id = ctx.resolve_image(ref, opts.pullPolicy if opts else "IF_NOT_PRESENT")
    except ImageError as exc:
        raise ImageError(exc.message, where=where) from None
    with ctx.lock:
        ctx.execution.images[ref] = image_id
    return ContainerOptions(
        image_id=image_id,
        cpus=(opts.cpu or {}).get("cpus") if opts and opts.cpu else None,
        memory=(opts.memory or {}).get("memory") if opts and opts.memory else None,
        shm_size=opts.shmSize if opts else None,
        network_mode=opts.networkMode if opts else None,
    )
