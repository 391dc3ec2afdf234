"""``open_workdir(spec) -> Workdir`` for any :class:`~executor.engine.api.ContainerEngine`.

The rule the whole executor rests on lives here: a WorkingDirectory gets one labelled volume,
and each distinct set of container options (image, limits, network) gets one long-lived
container on that volume, started on first use. Everything that runs in the directory, from any
thread, goes through one ``ContainerWorkdir``; ``close`` removes it all.

The rule is the engine's kind, not Docker's: the Docker backend and the fake share it through
:class:`ContainerBackend`, and so would any engine of volumes and containers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from executor.engine import overlay
from executor.engine.api import (
    ContainerEngine,
    ContainerOptions,
    ContainerSpec,
    Exec,
    ExecRequest,
    Workdir,
    WorkdirSpec,
)
from executor.errors import ExecutorError
from executor.tar_writer import Entry, tar_bytes

PREPARE_USER = r"""
uid="${1%%:*}"; gid="${1#*:}"; [ "$gid" = "$1" ] && gid="$uid"; ws="$2"
home=""
while IFS=: read -r n p u g gecos h sh; do
  [ "$u" = "$uid" ] && home="$h" && break
done < /etc/passwd
if [ -z "$home" ]; then
  home=/home/executor
  echo "executor:x:$uid:$gid:executor:$home:/bin/sh" >> /etc/passwd
fi
grep -q "^[^:]*:[^:]*:$gid:" /etc/group 2>/dev/null || echo "executor:x:$gid:" >> /etc/group
mkdir -p "$home" && chown "$uid:$gid" "$home"
chown -R "$uid:$gid" "$ws"
"""

CLAIM_WORKSPACE = r"""
spec="$1"; ws="$2"; uid="${spec%%:*}"; gid=""
case "$spec" in *:*) gid="${spec#*:}" ;; esac
if [ -r /etc/passwd ]; then
  while IFS=: read -r n p u g rest; do
    if [ "$n" = "$uid" ] || [ "$u" = "$uid" ]; then uid="$u"; [ -n "$gid" ] || gid="$g"; break; fi
  done < /etc/passwd
fi
[ -n "$gid" ] || gid="$uid"
case "$gid" in *[!0-9]*)
  [ -r /etc/group ] && while IFS=: read -r n p g rest; do
    [ "$n" = "$gid" ] && gid="$g" && break
  done < /etc/group ;;
esac
case "$uid:$gid" in *[!0-9:]*) echo "no such user or group in the image: $spec" >&2; exit 1 ;; esac
chown -R "$uid:$gid" "$ws"
"""


class ContainerWorkdir:
    """The volume and containers of one WorkingDirectory; safe to use from many threads."""

    def __init__(self, engine: ContainerEngine, spec: WorkdirSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.volume: str | None = None
        self._containers: dict[ContainerOptions, str] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._users: set[tuple[str, str]] = set()
        self._image_users: dict[str, str] = {}  # container -> its image's USER, when not root
        self._lock = threading.RLock()
        self._closed = False
        self._host_path: Path | bool | None = None  # False: looked, none
        self._scratch: overlay.Scratch | None = None
        self._spare: list[str] = []  # volumes replaced by an overlay, not yet removed

    @property
    def workspace(self) -> str:
        return self.spec.workspace

    def open(self) -> ContainerWorkdir:
        """Create the volume."""
        self.volume = self.engine.create_volume(self.spec.labels)
        return self

    @property
    def containers(self) -> list[str]:
        """The containers started so far."""
        with self._lock:
            return list(self._containers.values())

    def image_of(self, container: str) -> str | None:
        """The image id a container of this WorkingDirectory was started from."""
        with self._lock:
            return next((o.image_id for o, c in self._containers.items() if c == container), None)

    def container(self, options: ContainerOptions) -> str:
        """The container for these options, started on first use (once, whatever the threads)."""
        with self._lock:
            if self._closed:
                raise ExecutorError("the WorkingDirectory is closed")
            if options not in self._containers:
                assert self.volume is not None, "open() first"
                spec = ContainerSpec(
                    image=options.image_id,
                    volume=self.volume,
                    workspace=self.spec.workspace,
                    labels=self.spec.labels,
                    cpus=options.cpus,
                    memory=options.memory,
                    shm_size=options.shm_size,
                    network_mode=options.network_mode,
                    files=self.spec.files,
                    memory_swap=options.memory_swap,
                    pids_limit=options.pids_limit,
                    device_requests=options.device_requests,
                    env=self.spec.env,
                    read_only_binds=self.spec.read_only_binds,
                )
                container = self.engine.start_container(spec)
                self._containers[options] = container
                user = self.engine.image_user(options.image_id)
                if user:
                    self._image_users[container] = user
                self._slots[container] = threading.BoundedSemaphore(max(1, self.spec.max_execs))
            return self._containers[options]

    def layer_over(self, lower: Sequence[Path], scratch_root: Path) -> str | None:
        """Make the workspace an overlay of ``lower`` (top layer first) and start its container.

        The host directories become the read-only lower layers; every write lands in a
        scratch directory under ``scratch_root`` (see ``engine.overlay``), so nothing is
        copied and the directories are never written. Only before any container has started
        (the plain volume is still empty), and only with an engine that mounts this host's
        directories (``capabilities.host_directory``). The container of the spec's
        ``default_image`` is started on the overlay, so a failure to mount it shows here.

        Returns:
            ``None`` when the workspace is now the overlay, else why not; nothing has changed
            then and the workspace is still the plain, empty volume.
        """
        with self._lock:
            if self._closed or self._containers or self.volume is None:
                return "a container already uses the workspace"
            if not self.engine.capabilities.host_directory:
                return "the engine does not run on this host (or this process is not root)"
            why = overlay.unusable(lower, scratch_root)
            if why is not None:
                return why
            scratch = overlay.new_scratch(scratch_root)
            plain = self.volume
            labels = {**self.spec.labels, overlay.SCRATCH: scratch.id}
            try:
                layered = self.engine.create_volume(labels, scratch.options(lower))
            except ExecutorError as exc:
                return f"cannot create an overlay volume: {exc}"
            # From here close() removes both volumes and the scratch directory, whatever stops us.
            self._spare.append(plain)
            self.volume, self._scratch, self._host_path = layered, scratch, None
            try:
                # After the volume, so gc never sees a scratch directory without its volume.
                scratch.create(lower)
                self.container(self.spec.default_image())
            except (ExecutorError, OSError) as exc:
                self._remove_containers()
                self._spare.remove(plain)
                self.volume, self._scratch = plain, None
                self._drop(layered, scratch)
                return f"the engine could not mount the overlay: {exc}"
            with contextlib.suppress(ExecutorError):
                self.engine.remove_volume(plain)
                self._spare.remove(plain)
            return None

    def _remove_containers(self) -> None:
        for started in self._containers.values():
            with contextlib.suppress(ExecutorError):
                self.engine.remove_container(started)
        self._containers.clear()
        self._slots.clear()
        self._image_users.clear()

    def _drop(self, volume: str, scratch: overlay.Scratch) -> None:
        with contextlib.suppress(ExecutorError):
            self.engine.remove_volume(volume)
        scratch.remove()

    def any_container(self) -> str:
        """A running container on this volume (for files in and out); else the spec's
        ``default_image``'s, started now."""
        with self._lock:
            running = next(iter(self._containers.values()), None)
            return running or self.container(self.spec.default_image())

    @contextmanager
    def slot(self, container: str, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold one of the container's exec slots; ``waiting`` is told when none is free."""
        semaphore = self._slots[container]
        if not semaphore.acquire(blocking=False):
            if waiting is not None:
                waiting()
            while not semaphore.acquire(timeout=0.25):
                pass  # wake regularly so Ctrl-C reaches the main thread
        try:
            yield
        finally:
            semaphore.release()

    def exec(self, container: str, request: ExecRequest) -> Exec:
        """Start one exec in ``container`` (hold a ``slot`` around it)."""
        image_user = self._image_users.get(container)
        if request.user is None and image_user:
            self.claim_workspace(container, image_user)
        return self.engine.exec(container, request)

    def claim_workspace(self, container: str, user: str) -> None:
        """Make the workspace ``user``'s (an image's non-root USER), once a container.

        The volume starts out root's, so an image that runs as another user could not write
        it. The workspace is chowned to that user rather than made world-writable: tasks of
        other users (another image, a Docker runner's ``user``) get no write access to
        it by accident, and tools that check ownership (git's safe.directory, ssh) are content.
        Done at the container's first task, after seeding, so seeded files are the user's too.
        """
        with self._lock:
            if (container, user) in self._users:
                return
            result = self.admin_exec(
                container, ["/bin/sh", "-c", CLAIM_WORKSPACE, "claim", user, self.workspace]
            )
            if result is not None and result[0] != 0:
                raise ExecutorError(
                    f"cannot give the workspace to the image's user {user}: {result[1].strip()}"
                )
            self._users.add((container, user))

    def put_tar(self, container: str, path: str, data: IO[bytes] | bytes) -> None:
        """Extract a tar stream at ``path`` in the container (the shared volume, usually)."""
        self.engine.put_archive(container, path, data)

    def get_tar(
        self, container: str, path: str, buffer: bytearray | None = None
    ) -> Iterator[bytes]:
        """Stream ``path`` out of the container as a tar archive (see
        ``ContainerEngine.get_archive``)."""
        return self.engine.get_archive(container, path, buffer)

    def host_path(self) -> Path | None:
        """The volume's directory on this host when the engine is local and it may be read.

        Files can then be read off the disk instead of streamed through the engine's API.
        """
        with self._lock:
            if self._host_path is None:
                readable = self.engine.capabilities.host_volume_path
                found = self.engine.volume_path(self.volume) if readable and self.volume else None
                self._host_path = found or False
            return self._host_path if isinstance(self._host_path, Path) else None

    def admin_exec(self, container: str, argv: list[str]) -> tuple[int, str] | None:
        """Run a short command as root, outside any task; ``None`` when the engine cannot
        (no ``capabilities.admin_exec``)."""
        if not self.engine.capabilities.admin_exec:
            return None
        return self.engine.run_root(container, argv)

    def prepare_user(self, container: str, user: str) -> None:
        """Give ``user`` (uid[:gid]) a passwd entry, a HOME and the workspace, once a container."""
        with self._lock:
            if (container, user) in self._users or not user[:1].isdigit():
                return
            result = self.admin_exec(
                container, ["/bin/sh", "-c", PREPARE_USER, "prepare-user", user, self.workspace]
            )
            if result is not None and result[0] != 0:
                raise ExecutorError(f"cannot prepare user {user} in the container: {result[1]}")
            self._users.add((container, user))

    def put_files(self, container: str, files: Mapping[str, bytes]) -> None:
        """Place files at absolute paths inside the container (one archive)."""
        archive = tar_bytes(Entry.inline(path.lstrip("/"), data) for path, data in files.items())
        self.engine.put_archive(container, "/", archive)

    def close(self) -> list[str]:
        """Remove every container and the volume; returns what could not be removed."""
        problems: list[str] = []
        with self._lock:
            self._closed = True
            containers = list(self._containers.values())
            self._containers.clear()
        for container in containers:
            try:
                self.engine.remove_container(container)
            except ExecutorError as exc:
                problems.append(str(exc))
        if self.volume is not None:
            try:
                self.engine.remove_volume(self.volume)
                self.volume = None
            except ExecutorError as exc:
                problems.append(str(exc))
        for spare in list(self._spare):
            try:
                self.engine.remove_volume(spare)
                self._spare.remove(spare)
            except ExecutorError as exc:
                problems.append(str(exc))
        if self._scratch is not None and self.volume is None:
            # Only once the engine let the volume go: the overlay is unmounted then.
            self._scratch.remove()
            if self._scratch.path.exists():
                problems.append(f"cannot remove the overlay directory {self._scratch.path}")
            self._scratch = None
        return problems


class ContainerBackend:
    """``open_workdir`` for a :class:`~executor.engine.api.ContainerEngine` (a mixin: the
    engine's class inherits it and implements the rest of the Protocol)."""

    def open_workdir(self: ContainerEngine, spec: WorkdirSpec) -> Workdir:
        """Create the volume of a new WorkingDirectory; containers start on first use."""
        return ContainerWorkdir(self, spec).open()


def _check(workdir: ContainerWorkdir) -> Workdir:
    return workdir  # mypy: ContainerWorkdir must satisfy the Workdir protocol
