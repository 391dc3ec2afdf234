"""The engine interface the runner talks to; ``run/`` never sees Docker's API.

A backend (``DockerEngine``, or ``FakeEngine`` in tests) implements :class:`Engine`.
Requests and results are small frozen value objects.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable


class Stream(enum.StrEnum):
    """Which pipe a line of task output came from."""

    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for pulling from one registry (Kestra's Docker runner ``credentials``).

    The values are secrets: they travel only in the engine's ``X-Registry-Auth`` header, never
    in argv, logs or records, and ``repr`` hides them.

    Attributes:
        registry: the registry's address (``host[:port]``), named in error messages.
        username / password: basic credentials.
        auth: ``base64(username:password)``, as in Docker's config file.
        registry_token / identity_token: a bearer token, or an OAuth identity token.
    """

    registry: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    auth: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be shown."""
        values = (self.password, self.auth, self.registry_token, self.identity_token)
        return tuple(v for v in values if v)


@dataclass(frozen=True)
class DeviceRequest:
    """A request for host devices such as GPUs, as ``docker run --gpus`` makes one.

    Attributes:
        driver: the device driver (``nvidia``); the engine picks one when empty.
        count: how many devices; ``-1`` for all.
        device_ids: the devices wanted by id (instead of ``count``).
        capabilities: alternatives, each a list of capabilities (``[["gpu"]]``).
        options: driver-specific options, as (name, value) pairs (hashable, as the spec is).
    """

    driver: str = ""
    count: int = 0
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[tuple[str, ...], ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    """A long-lived container: one per image per WorkingDirectory.

    Attributes:
        image: a local image id or reference, already resolved.
        volume: name of the workspace volume to mount.
        workspace: where the volume is mounted; also the working directory.
        labels: ownership labels (see ``engine.labels``).
        env: extra environment for the container (the image's own env is kept).
        cpus / memory / shm_size / network_mode: Docker runner options, when given.
        memory_swap: memory plus swap (Docker's ``--memory-swap``; ``-1`` for unlimited swap).
        pids_limit: the most processes the container may hold (a fork bomb stops there).
        device_requests: devices such as GPUs (Docker's ``--gpus``).
        files: extra files to place in the container before start (path -> bytes).
        read_only_binds: host path -> container path, mounted read-only.
    """

    image: str
    volume: str
    workspace: str
    labels: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None
    network_mode: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    read_only_binds: Mapping[str, str] = field(default_factory=dict)
    memory_swap: str | None = None
    pids_limit: int | None = None
    device_requests: tuple[DeviceRequest, ...] = ()


@dataclass(frozen=True)
class ExecRequest:
    """One task run as one exec in a running container.

    Attributes:
        argv: the command; run by the exec wrapper in a session of its own.
        token: a unique name for this exec's record (pid, exit code) in the container.
        env: environment added to the image's (values travel in the API body, never argv).
        workdir: working directory; the workspace when ``None``.
        user: ``uid[:gid]`` or a name; the container's default when ``None``.
    """

    argv: tuple[str, ...]
    token: str
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None


@dataclass(frozen=True)
class ExecResult:
    """What the engine confirms about a finished exec.

    Attributes:
        exit_code: the process's exit code as the engine (and the wrapper's record) report it.
        oom_killed: the container's OOM flag flipped during this exec.
        error: why the exit code could not be confirmed, when it could not (exit code is then -1).
    """

    exit_code: int
    oom_killed: bool = False
    error: str | None = None


@dataclass(frozen=True)
class KillResult:
    """What a kill of an exec's processes achieved.

    Attributes:
        survivors: pids (inside the container) of the task's processes still alive after KILL.
        error: why the kill could not be confirmed, when it could not.
    """

    survivors: tuple[int, ...] = ()
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Every process of the task is known to be gone."""
        return not self.survivors and self.error is None


Line = tuple[Stream, str]
# Receives the lines of one chunk of output at a time, in arrival order (fewer hand-offs
# between threads than one call a line: a task printing a million lines stays cheap).
LineSink = Callable[[list[Line]], None]


class Exec(Protocol):
    """A started exec: stream its lines, then wait for its confirmed result."""

    def stream(self, sink: LineSink) -> ExecResult:
        """Deliver output lines to ``sink`` as they arrive; return when the process ends.

        A line too long to hold (over 16 KiB in the Docker backend; a ``::{`` protocol line
        over 1 MiB) arrives as several pieces, each a line of its own.
        """
        ...

    def kill(self, grace_seconds: float) -> KillResult:
        """TERM every process of this exec, wait ``grace_seconds``, then KILL what is left.

        Returns:
            the processes that survived, or why that could not be confirmed.
        """
        ...


@dataclass(frozen=True)
class Resource:
    """A container, volume or network carrying our labels."""

    kind: str
    id: str
    name: str
    labels: Mapping[str, str]


class Engine(Protocol):
    """What the runner needs from a container engine."""

    def ping(self) -> None:
        """Raise :class:`~executor.errors.EngineUnavailable` when no engine answers."""
        ...

    def image_id(self, ref: str) -> str | None:
        """The local image id of ``ref``, or ``None`` when it is not present.

        A reference with a digest names the image whose ``RepoDigests`` hold it.
        """
        ...

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> str:
        """Pull ``ref`` (with ``auth`` when given) and return its id.

        A reference with a digest is verified: the pulled image must hold that digest.

        Raises:
            ImageError: the image cannot be had; the message names the registry.
        """
        ...

    def repo_digest(self, ref: str, image_id: str) -> str | None:
        """The digest the registry of ``ref`` gave ``image_id`` when it was pulled, if known."""
        ...

    def image_user(self, image: str) -> str:
        """The user an image runs as by default (its ``USER``); empty when it runs as root."""
        ...

    def create_volume(
        self, labels: Mapping[str, str], options: Mapping[str, str] | None = None
    ) -> str:
        """Create a labelled volume and return its name.

        ``options`` are the local driver's mount options (``type``, ``device``, ``o``), as
        ``docker volume create --opt`` takes them; a plain volume when ``None``.
        """
        ...

    def remove_volume(self, name: str) -> None:
        """Remove a volume; a missing one is not an error."""
        ...

    def start_container(self, spec: ContainerSpec) -> str:
        """Create and start a long-lived container and return its id."""
        ...

    def remove_container(self, container_id: str) -> None:
        """Force-remove a container; a missing one is not an error."""
        ...

    def exec(self, container_id: str, request: ExecRequest) -> Exec:
        """Start one exec of ``request`` in the container."""
        ...

    def put_archive(self, container_id: str, path: str, data: IO[bytes] | bytes) -> None:
        """Extract a tar stream into ``path`` inside the container."""
        ...

    def get_archive(
        self, container_id: str, path: str, buffer: bytearray | None = None
    ) -> Iterator[bytes]:
        """Stream ``path`` out of the container as a tar archive.

        With ``buffer``, every chunk is a view of it, valid until the next chunk is asked for
        (nothing allocated per chunk); without, every chunk is a buffer of its own.
        """
        ...

    def list_resources(self, label_filter: Mapping[str, str | None]) -> list[Resource]:
        """Containers, volumes and networks whose labels match (``None``: label present)."""
        ...

    def remove_resource(self, resource: Resource) -> None:
        """Remove one listed resource (containers forcibly)."""
        ...


@dataclass(frozen=True)
class BuildRequest:
    """What a ``docker.Build`` task asks the engine to build.

    Attributes:
        context: the host directory sent as the build context.
        dockerfile: the Dockerfile's path inside ``context``.
        tags: the references to tag the image with (at least one).
        build_args / labels: ``--build-arg`` and ``--label`` values.
        platform: ``linux/amd64`` and the like, or ``None`` for the engine's own.
        pull: whether to pull a newer base image first.
    """

    context: Path
    dockerfile: str
    tags: tuple[str, ...]
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    platform: str | None
    pull: bool


@runtime_checkable
class ImageBuilder(Protocol):
    """An engine that builds and pushes images for tasks (``docker.Build``, ``docker.Push``)."""

    def build_task_image(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """Build and tag; the image id (ImageError when the build fails)."""
        ...

    def push_image(
        self, ref: str, auth: RegistryAuth | None, on_line: Callable[[str], None]
    ) -> str | None:
        """Push a local tag to its registry; the digest (ImageError when refused)."""
        ...


@dataclass(frozen=True)
class ImageCommand:
    """What a container of an image runs when it is given no command: ``docker.Run``'s default.

    Attributes:
        entrypoint: the image's ENTRYPOINT (empty when it has none).
        cmd: the image's CMD (empty when it has none).
    """

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]


@runtime_checkable
class ImageInspector(Protocol):
    """An engine that tells what an image runs by default (``docker.Run`` without commands)."""

    def image_command(self, image: str) -> ImageCommand:
        """The image's ENTRYPOINT and CMD."""
        ...
