"""The engine seam: what ``run/``, ``workspace/`` and ``app.py`` may ask of a container engine.

They see only this module's Protocols and value objects, never Docker's API:

    Backend                 chosen by ``engine.backends.backend_for(settings)``; ``capabilities``
    ├── open_workdir(WorkdirSpec) -> Workdir        one WorkingDirectory's volume and containers
    │   └── exec(container, ExecRequest) -> Exec    one task: stream(sink), kill(grace)
    ├── image_id, pull, repo_digest                 resolving a task's image
    ├── list_resources, remove_resource             ``gc``: what carries our labels
    └── build_task_image, push_image, image_store   only with ``capabilities.image_build``

A backend whose resources are volumes and containers implements :class:`ContainerEngine` and
gets ``open_workdir`` (the one-volume, one-container-per-image rule) from
``engine.containers.ContainerBackend``: the Docker backend (``engine.docker``) and the fake
(``engine.fake``) do. Optional features are declared in :class:`Capabilities`, never probed.
Requests and results are small frozen value objects.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from executor.settings import Settings


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


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond running containers, declared rather than probed.

    Attributes:
        host_directory: it mounts this process's directories into containers (a workspace
            seeded from namespace files becomes an overlay of them instead of a copy).
        host_volume_path: its volumes are directories this process may read (outputs are
            read off the disk instead of streamed through the engine).
        admin_exec: it runs short commands as root in a container outside any task (a task
            user's passwd entry, the workspace's owner, listings of cached venvs).
        image_build: it builds, tags and pushes images (``docker.Build``, ``docker.Push``,
            ``executor images``).
    """

    host_directory: bool = False
    host_volume_path: bool = False
    admin_exec: bool = False
    image_build: bool = False


@dataclass(frozen=True)
class ContainerOptions:
    """What distinguishes one long-lived container from another in a WorkingDirectory."""

    image_id: str
    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None
    network_mode: str | None = None
    memory_swap: str | None = None
    pids_limit: int | None = None
    device_requests: tuple[DeviceRequest, ...] = ()


@dataclass(frozen=True)
class WorkdirSpec:
    """What a WorkingDirectory's resources are made of.

    Attributes:
        labels: ownership labels for the volume and every container (see ``engine.labels``).
        workspace: where the volume is mounted in each container; the working directory.
        default_image: the container that files go in and out through before any task has
            started one (the first script child's image and options, else the default shell
            image's); asked on first need only, since its image may not resolve before then.
        known_images: the containers the children are known to need, in first-use order,
            as far as the run can tell when the WorkingDirectory starts (a child whose image
            depends on a task's output is not in it). Docker starts each container on first
            use and never asks; a backend whose containers are all made at once (a Kubernetes
            pod) asks at ``open_workdir``, and refuses a ``container`` call outside it.
        max_execs: how many execs may run at once in one container (first come, first served).
        files: files placed in each container before it starts (absolute path -> bytes).
        env: environment of every container (the host's proxy and CA variables).
        read_only_binds: host path -> container path, mounted read-only (the CA bundle).
    """

    labels: Mapping[str, str]
    workspace: str
    default_image: Callable[[], ContainerOptions]
    known_images: Callable[[], tuple[ContainerOptions, ...]] = tuple
    max_execs: int = 8
    files: Mapping[str, bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    read_only_binds: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Workdir(Protocol):
    """One WorkingDirectory: a workspace volume and its containers; safe from many threads."""

    @property
    def workspace(self) -> str:
        """Where the workspace is mounted in every container."""
        ...

    @property
    def containers(self) -> list[str]:
        """The containers started so far."""
        ...

    def image_of(self, container: str) -> str | None:
        """The image id ``container`` was started from."""
        ...

    def container(self, options: ContainerOptions) -> str:
        """The container for these options, started on first use (once, whatever the threads)."""
        ...

    def any_container(self) -> str:
        """A running container on the workspace; the spec's ``default_image`` when none runs."""
        ...

    def layer_over(self, lower: Sequence[Path], scratch_root: Path) -> str | None:
        """Make the empty workspace an overlay of host directories; ``None``, or why not."""
        ...

    def slot(
        self, container: str, waiting: Callable[[], None] | None = None
    ) -> AbstractContextManager[None]:
        """Hold one of the container's exec slots; ``waiting`` is told when none is free."""
        ...

    def exec(self, container: str, request: ExecRequest) -> Exec:
        """Start one task's exec in ``container`` (hold a ``slot`` around it)."""
        ...

    def put_tar(self, container: str, path: str, data: IO[bytes] | bytes) -> None:
        """Extract a tar stream at ``path`` in the container."""
        ...

    def get_tar(
        self, container: str, path: str, buffer: bytearray | None = None
    ) -> Iterator[bytes]:
        """Stream ``path`` out of the container as a tar archive (see ``get_archive``)."""
        ...

    def put_files(self, container: str, files: Mapping[str, bytes]) -> None:
        """Place files at absolute paths inside the container."""
        ...

    def host_path(self) -> Path | None:
        """The workspace's directory on this host, when it may be read there."""
        ...

    def admin_exec(self, container: str, argv: list[str]) -> tuple[int, str] | None:
        """A short command as root outside any task: (exit code, output); ``None`` when the
        backend has no ``admin_exec`` capability."""
        ...

    def prepare_user(self, container: str, user: str) -> None:
        """Give ``user`` (uid[:gid]) a passwd entry, a HOME and the workspace, once."""
        ...

    def close(self) -> list[str]:
        """Remove every container and the volume; what could not be removed."""
        ...


class ImageStore(Protocol):
    """The image operations ``executor images`` builds the catalogue with."""

    def image_id(self, ref: str) -> str | None:
        """The local image id of ``ref``, or ``None``."""
        ...

    def images_labelled(self, label: str, value: str) -> list[str]:
        """Ids of the local images (tagged or not) whose ``label`` is ``value``, newest first."""
        ...

    def tag(self, image_id: str, ref: str) -> None:
        """Point ``ref`` at ``image_id``."""
        ...

    def remove_unused(self, image_id: str) -> bool:
        """Remove an image unless a container or another name uses it; whether it is gone."""
        ...

    def import_rootfs(
        self, rootfs: Path, ref: str, changes: Sequence[str], labels: Mapping[str, str]
    ) -> str:
        """Import a root filesystem directory as ``ref`` with ``labels``; return the image id."""
        ...

    def build_dockerfile(
        self,
        context: Path,
        ref: str,
        on_line: Callable[[str], None],
        labels: Mapping[str, str],
    ) -> str:
        """Build the Dockerfile in ``context`` as ``ref`` with ``labels``; return the image id."""
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
class Backend(Protocol):
    """A container engine as the executor uses it; ``engine.backends.backend_for`` picks one.

    Thread-safe: the branches of a Parallel, and a server's slots, use one backend at once.
    """

    @property
    def capabilities(self) -> Capabilities:
        """What it can do beyond running containers."""
        ...

    @property
    def address(self) -> str:
        """Where the engine is, as messages name it."""
        ...

    def ping(self) -> None:
        """Raise :class:`~executor.errors.EngineUnavailable` when no engine answers."""
        ...

    def engine_id(self) -> str:
        """The engine's own id: which host's engine runs the containers (a worker says)."""
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

    def image_command(self, image: str) -> ImageCommand:
        """What the image runs when given no command (``docker.Run`` without ``commands``)."""
        ...

    def open_workdir(self, spec: WorkdirSpec) -> Workdir:
        """Create the volume of a new WorkingDirectory; containers start on first use."""
        ...

    def list_resources(self, label_filter: Mapping[str, str | None]) -> list[Resource]:
        """Containers, volumes and networks whose labels match (``None``: label present)."""
        ...

    def remove_resource(self, resource: Resource) -> None:
        """Remove one listed resource (containers forcibly)."""
        ...

    def build_task_image(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """Build and tag (``capabilities.image_build``); the image id.

        Raises:
            ImageError: the build failed, or this backend builds no images.
        """
        ...

    def push_image(
        self, ref: str, auth: RegistryAuth | None, on_line: Callable[[str], None]
    ) -> str | None:
        """Push a local tag to its registry (``capabilities.image_build``); the digest.

        Raises:
            ImageError: the registry refused it, or this backend pushes no images.
        """
        ...

    def image_store(self) -> ImageStore:
        """The image operations ``executor images`` uses (``capabilities.image_build``).

        Raises:
            ImageError: this backend builds no images.
        """
        ...


@runtime_checkable
class ContainerEngine(Backend, Protocol):
    """A backend whose resources are volumes and long-lived containers (Docker, the fake).

    ``engine.containers.ContainerBackend`` turns these calls into WorkingDirectories.
    """

    def image_user(self, image: str) -> str:
        """The user an image runs as by default (its ``USER``); empty when it runs as root."""
        ...

    def create_volume(
        self, labels: Mapping[str, str], options: Mapping[str, str] | None = None
    ) -> str:
        """Create a labelled volume and return its name.

        ``options`` are the local driver's mount options (``type``, ``device``, ``o``), as
        ``docker volume create --opt`` takes them; a plain volume when ``None``. Only with
        ``capabilities.host_directory``.
        """
        ...

    def remove_volume(self, name: str) -> None:
        """Remove a volume; a missing one is not an error."""
        ...

    def volume_path(self, name: str) -> Path | None:
        """Where a volume's files are on this host, when readable (``host_volume_path``)."""
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

    def run_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """A short exec as root (``capabilities.admin_exec``): exit code and output."""
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


class BackendClass(Protocol):
    """How ``engine.backends`` makes a backend of a kind named in the settings."""

    def from_settings(self, settings: Settings) -> Backend:
        """Connect to the engine the settings name.

        Raises:
            EngineUnavailable: nothing answers there, naming the address and how to start one.
        """
        ...

    def describe(self, settings: Settings, timeout: float) -> dict[str, str]:
        """Who answers at the settings' engine (address, version), within ``timeout`` seconds.

        Raises:
            EngineUnavailable: nothing answers there in time.
        """
        ...
