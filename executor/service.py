"""Composition: the pieces a command needs, wired together (the CLI's only way in)."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executor.engine import labels as labelling
from executor.engine.api import Engine, Resource
from executor.engine.client import RetryPolicy, connect
from executor.engine.docker_engine import DockerEngine
from executor.errors import ImageError
from executor.flow.loader import LoadedFlow, all_tasks, load_flow

__all__ = ["docker_engine", "load_flow", "run_flow", "sweep_orphans"]
from executor.flow.model import ScriptTask
from executor.flow.secrets import Secrets
from executor.images import ImageResolver
from executor.run.execution import Execution, RunListener
from executor.run.inputs import resolve_inputs
from executor.run.runner import FlowRunner
from executor.run.signals import interrupts_as_keyboard
from executor.settings import Settings


def docker_engine(settings: Settings) -> DockerEngine:
    """Connect to the engine named by the settings (raises EngineUnavailable)."""
    retry = RetryPolicy(settings.engine_retry_attempts, settings.engine_retry_wait_seconds)
    return DockerEngine(connect(settings.docker_host), retry)


def secrets_for(settings: Settings) -> Secrets:
    path = settings.home / "secrets.yaml"
    return Secrets.from_env(os.environ, path if path.exists() else None)


@dataclass
class Prepared:
    """A flow checked and ready: its inputs converted and its images resolved."""

    loaded: LoadedFlow
    inputs: dict[str, Any]


class ImageLookup:
    """Resolves references through aliases and the lock, remembering what it found."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.engine = engine
        self.resolver = ImageResolver(settings, engine.image_id)
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, ref: str, pull_policy: str) -> str:
        key = (ref, pull_policy)
        if key not in self.cache:
            resolved = self.resolver.resolve(ref, pull_policy, self.engine.pull)
            self.cache[key] = resolved.image_id
        return self.cache[key]


def preflight(loaded: LoadedFlow, settings: Settings, images: ImageLookup) -> None:
    """Resolve every image the flow names before anything starts.

    Raises:
        ImageError: an image cannot be resolved, located at its task.
    """
    for _path, task in all_tasks(loaded.flow):
        if not isinstance(task, ScriptTask):
            continue
        ref = task.image or (
            settings.default_python_image if task.is_python else settings.default_shell_image
        )
        if "{{" in ref:
            continue
        opts = task.docker_options
        try:
            images(ref, opts.pullPolicy if opts else "IF_NOT_PRESENT")
        except ImageError as exc:
            raise ImageError(exc.message, where=loaded.task_where(task.id)) from None


def run_flow(
    settings: Settings,
    flow_path: Path,
    given_inputs: dict[str, str],
    listeners: Sequence[RunListener] = (),
    *,
    engine: Engine | None = None,
    execution: Execution | None = None,
    workspace: Any = None,
    secrets: Secrets | None = None,
) -> Execution:
    """Load, check and run a flow; Ctrl-C or SIGTERM end it KILLED (KeyboardInterrupt re-raised).

    ``secrets`` lets the caller share the masker with its own listeners (the run record masks
    outputs with it); by default they are loaded from the environment and the secrets file.
    """
    loaded = load_flow(flow_path)
    inputs = resolve_inputs(list(loaded.flow.inputs), given_inputs)
    engine = engine or docker_engine(settings)
    sweep_orphans(engine)
    images = ImageLookup(settings, engine)
    preflight(loaded, settings, images)
    if workspace is None:
        from executor.workspace.service import WorkspaceService

        workspace = WorkspaceService(settings, engine)
    execution = execution or Execution(loaded.flow.namespace, loaded.flow.id, inputs)
    inputs = store_file_inputs(settings, loaded, inputs, execution.id)
    execution.inputs = inputs
    if secrets is None:
        secrets = secrets_for(settings)
    runner = FlowRunner(
        engine, settings, images, secrets=secrets, listeners=listeners, workspace=workspace
    )
    with interrupts_as_keyboard():
        return runner.run(loaded, inputs, execution)


def store_file_inputs(
    settings: Settings, loaded: LoadedFlow, inputs: dict[str, Any], execution_id: str
) -> dict[str, Any]:
    """Copy FILE inputs into the artifact store; templates then see their ``kestra:///`` URIs.

    Like Kestra, a task reaches a FILE input's bytes through inputFiles, never the host path.
    """
    from executor.store.artifacts import ArtifactStore

    store = ArtifactStore(settings.artifacts_dir)
    flow = loaded.flow
    converted = dict(inputs)
    for spec in flow.inputs:
        value = inputs.get(spec.id)
        if spec.type != "FILE" or not value:
            continue
        source = Path(value)
        prefix = store.prefix(flow.namespace, flow.id, execution_id, "inputs", spec.id)
        with source.open("rb") as fh:
            converted[spec.id] = store.write(prefix, source.name, fh)
    return converted


def sweep_orphans(engine: Engine, *, dry_run: bool = False) -> list[Resource]:
    """Remove our containers, volumes and networks whose owner process is provably gone."""
    hostname = socket.gethostname()
    removed: list[Resource] = []
    resources = engine.list_resources({labelling.MANAGED: "true"})
    # containers first: a volume in use cannot be removed
    for res in sorted(resources, key=lambda r: {"container": 0, "network": 1}.get(r.kind, 2)):
        if labelling.owner_is_gone(res.labels, hostname):
            if not dry_run:
                engine.remove_resource(res)
            removed.append(res)
    return removed
