"""``docker.Build`` and ``docker.Push`` on the engine that runs the tasks.

The build context is a private directory on the host holding the task's ``inputFiles`` and
``namespaceFiles`` (nothing else of the host goes in); an inline ``dockerfile`` is written there
too. Build output is logged line by line; the task's ``timeout`` and a kill stop the build (the
engine cancels it when the connection closes). Registry passwords are masked everywhere.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from executor.engine.api import Backend, BuildRequest, RegistryAuth
from executor.flow.tasks_docker import DockerBuildTask, DockerPushTask, DockerTaskBase
from executor.model import Level, State
from executor.paths import safe_relative
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.files.artifacts import write_file
from executor.workspace.globs import GlobSet

_INLINE_DOCKERFILE = ".executor.dockerfile"


def _builder(job: HostJob) -> Backend:
    backend = job.ctx.backend
    if not backend.capabilities.image_build:
        raise TaskInputError("this engine cannot build or push images")
    return backend


def _texts(value: list[str] | str | None, job: HostJob, name: str) -> list[str]:
    """A list property: a list, one value, or the JSON text of a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return [job.text(v).strip() for v in value if job.text(v).strip()]
    text = job.text(value).strip()
    if text.startswith("["):
        try:
            found = json.loads(text)
        except ValueError:
            raise TaskInputError(f"'{name}' is not a JSON list: {text!r}") from None
        return [str(v).strip() for v in found if str(v).strip()]
    return [text] if text else []


def _tags(task: DockerBuildTask | DockerPushTask, job: HostJob) -> list[str]:
    tags = [t.split("://", 1)[-1] for t in _texts(task.tags, job, "tags")]  # Kestra drops schemes
    if not tags:
        raise TaskInputError("At least one tag must be provided")
    return list(dict.fromkeys(tags))


def _auth(task: DockerTaskBase, job: HostJob) -> RegistryAuth | None:
    given = task.credentials
    if given is None:
        return None

    def value(text: str | None) -> str | None:
        return job.text(text) or None if text else None

    auth = RegistryAuth(
        registry=value(given.registry),
        username=value(given.username),
        password=value(given.password),
        auth=value(given.auth),
        registry_token=value(given.registryToken),
        identity_token=value(given.identityToken),
    )
    job.ctx.secrets.remember(*auth.secrets)
    return auth


def _check_engine_options(task: DockerTaskBase, job: HostJob) -> None:
    if task.host and job.text(task.host).strip():
        raise TaskInputError("'host': images are built and pushed on this executor's own engine")
    if task.config is not None:
        job.log(Level.WARN, "'config' is not read: give registry credentials in 'credentials'")


def _watch(job: HostJob) -> Any:
    """A line sink that logs and stops the engine's stream on timeout or kill."""
    deadline = job.deadline()

    def on_line(line: str) -> None:
        job.log(Level.INFO, line)
        if job.scope.cancel.cancelled:
            raise TaskInputError("stopped: the execution was cancelled")
        if deadline is not None and time.monotonic() > deadline:
            raise TaskInputError(f"timed out after {job.task.timeout}")

    return on_line


def _write_context(task: DockerBuildTask, job: HostJob, context: Path) -> None:
    """``inputFiles`` (text, or ``kestra:///`` URIs) and ``namespaceFiles`` into the context."""
    if task.namespaceFiles is not None and job.flag(
        task.namespaceFiles.enabled, "namespaceFiles.enabled", True
    ):
        store = job.ctx.stores().namespaces
        namespace = job.ctx.loaded.flow.namespace
        if store.exists(namespace):
            chosen = GlobSet.of(
                [job.text(g).lstrip("/") for g in task.namespaceFiles.include],
                [job.text(g).lstrip("/") for g in task.namespaceFiles.exclude],
            )
            for path in store.paths(namespace):
                if chosen(path):
                    write_file(context, PurePosixPath(path), [store.read(namespace, path)])
    if task.inputFiles is not None:
        job.write_input_files(task.inputFiles, context)


def _build(task: DockerBuildTask, job: HostJob) -> AttemptResult:
    _check_engine_options(task, job)
    builder = _builder(job)
    tags = _tags(task, job)
    platforms = _texts(task.platforms, job, "platforms")
    if len(platforms) > 1:
        raise TaskInputError(
            f"'platforms': one platform per build here (the engine's builder), got {platforms}"
        )
    auth = _auth(task, job)
    with tempfile.TemporaryDirectory(prefix="executor-build-") as tmp:
        context = Path(tmp)
        _write_context(task, job, context)
        dockerfile = job.text(task.dockerfile)
        named = dockerfile.strip()
        if named and "\n" not in named and (context / named).is_file():
            name = str(safe_relative(named))
        else:
            write_file(context, PurePosixPath(_INLINE_DOCKERFILE), [dockerfile.encode("utf-8")])
            name = _INLINE_DOCKERFILE
        request = BuildRequest(
            context=context,
            dockerfile=name,
            tags=tuple(tags),
            build_args={k: job.text(v) for k, v in (task.buildArgs or {}).items()},
            labels={k: job.text(v) for k, v in (task.labels or {}).items()},
            platform=platforms[0] if platforms else None,
            pull=job.flag(task.pull, "pull", True),
        )
        image_id = builder.build_task_image(request, _watch(job))
    job.log(Level.INFO, f"built {image_id[:19]} as {', '.join(tags)}")
    if job.flag(task.push, "push"):
        _push_all(builder, tags, auth, job)
    return AttemptResult(State.SUCCESS, outputs={"imageId": image_id})


def _push_all(builder: Backend, tags: list[str], auth: RegistryAuth | None, job: HostJob) -> None:
    for tag in tags:
        digest = builder.push_image(tag, auth, _watch(job))
        job.log(Level.INFO, f"pushed {tag}" + (f" ({digest})" if digest else ""))


def _push(task: DockerPushTask, job: HostJob) -> AttemptResult:
    _check_engine_options(task, job)
    _push_all(_builder(job), _tags(task, job), _auth(task, job), job)
    return AttemptResult(State.SUCCESS)


DOCKER_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {
    DockerBuildTask: host_attempt(_build),
    DockerPushTask: host_attempt(_push),
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in DOCKER_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
