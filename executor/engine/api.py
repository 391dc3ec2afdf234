"""The engine interface the runner talks to; ``run/`` never sees Docker's API.

A backend (``DockerEngine``, or ``FakeEngine`` in tests) implements :class:`Engine`.
Requests and results are small frozen value objects.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Protocol


class Stream(enum.StrEnum):
    """Which pipe a line of task output came from."""

    STDOUT = "stdout"
    STDERR = "stderr"


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
        files: extra files to place in the container before start (path -> bytes).
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

    def pull(self, ref: str) -> str:
        """Pull ``ref`` and return its id; raise ImageError when it cannot be had."""
        ...

    def image_user(self, image: str) -> str:
        """The user an image runs as by default (its ``USER``); empty when it runs as root."""
        ...

    def create_volume(self, labels: Mapping[str, str]) -> str:
        """Create a labelled volume and return its name."""
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

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """Stream ``path`` out of the container as a tar archive."""
        ...

    def list_resources(self, label_filter: Mapping[str, str | None]) -> list[Resource]:
        """Containers, volumes and networks whose labels match (``None``: label present)."""
        ...

    def remove_resource(self, resource: Resource) -> None:
        """Remove one listed resource (containers forcibly)."""
        ...
