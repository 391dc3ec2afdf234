"""Which container a script task runs in: its image, resolved, and its Docker options."""

from __future__ import annotations

from collections.abc import Callable

from executor.engine.api import ContainerOptions, DeviceRequest, RegistryAuth
from executor.errors import ImageError
from executor.flow.tasks_exec import Credentials, DeviceRequestSpec, ExecScript
from executor.model import TaskRun
from executor.run.context import RunContext
from executor.run.scope import Scope
from executor.settings import Settings


def default_image(task: ExecScript, settings: Settings) -> str:
    """The image of a task that names none: Kestra's default for its kind."""
    if task.default_image is not None:
        return task.default_image
    return settings.default_python_image if task.is_python else settings.default_shell_image


def container_options(
    task: ExecScript, run: TaskRun, scope: Scope, ctx: RunContext, *, record: bool = True
) -> ContainerOptions:
    """The container options (and resolved image) a script task asks for.

    ``record``: note the image in the execution's record (the task runs in it); ``False`` when
    only asked ahead (which images a WorkingDirectory's children are known to need).
    """
    settings = ctx.settings
    ref = task.image or default_image(task, settings)
    where = ctx.where(task)
    variables = ctx.variables(run, task, scope)
    ref = ctx.renderer.render(ref, variables, where=where)
    opts = task.docker_options
    auth = None
    if opts is not None and opts.credentials is not None:
        auth = registry_auth(
            opts.credentials,
            ctx,
            lambda text: ctx.renderer.render(text, variables, where=f"{where} credentials"),
        )
    try:
        resolved = ctx.resolve_image(ref, opts.pullPolicy if opts else "IF_NOT_PRESENT", auth)
    except ImageError as exc:
        raise ImageError(ctx.secrets.mask(exc.message), where=where) from None
    if record:
        with ctx.lock:
            ctx.execution.images[ref] = resolved.image_id
            if resolved.digest:
                ctx.execution.image_digests[ref] = resolved.digest
    memory = (opts.memory or {}) if opts else {}
    return ContainerOptions(
        image_id=resolved.image_id,
        cpus=(opts.cpu or {}).get("cpus") if opts and opts.cpu else None,
        memory=memory.get("memory"),
        shm_size=opts.shmSize if opts else None,
        network_mode=opts.networkMode if opts else None,
        memory_swap=memory.get("memorySwap"),
        pids_limit=settings.pids_limit or None,
        device_requests=tuple(
            device_request(spec) for spec in (opts.deviceRequests or [] if opts else [])
        ),
    )


def registry_auth(
    credentials: Credentials, ctx: RunContext, render: Callable[[str], str]
) -> RegistryAuth:
    """Render the credentials (``{{ secret('X') }}``) now, and mask every secret value of them."""

    def value(text: str | None) -> str | None:
        return render(text) if text else None

    auth = RegistryAuth(
        registry=value(credentials.registry),
        username=value(credentials.username),
        password=value(credentials.password),
        auth=value(credentials.auth),
        registry_token=value(credentials.registryToken),
        identity_token=value(credentials.identityToken),
    )
    ctx.secrets.remember(*auth.secrets)  # a password written in clear is masked too
    return auth


def device_request(spec: DeviceRequestSpec) -> DeviceRequest:
    """The engine's form of one ``deviceRequests`` entry."""
    return DeviceRequest(
        driver=spec.driver or "",
        count=spec.count or 0,
        device_ids=tuple(spec.deviceIds or ()),
        capabilities=tuple(tuple(c) for c in spec.capabilities or ()),
        options=tuple(sorted((spec.options or {}).items())),
    )
