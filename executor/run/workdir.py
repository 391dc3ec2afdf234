"""The resources of one WorkingDirectory: a volume and one long-lived container per image."""

from __future__ import annotations

import contextlib
import io
import queue
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources

from executor.engine.api import ContainerSpec, Engine, ExecRequest, ExecResult, Stream
from executor.errors import EngineError, ExecutorError

_DONE = object()

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


def kestra_module() -> bytes:
    return resources.files("executor.run").joinpath("kestra/kestra.py").read_bytes()


@dataclass(frozen=True)
class ContainerOptions:
    """What distinguishes one long-lived container from another in a WorkingDirectory."""

    image_id: str
    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None
    network_mode: str | None = None


@dataclass(frozen=True)
class ExecOutcome:
    """How one exec ended as seen from the host."""

    result: ExecResult
    timed_out: bool
    duration: float


class WorkingDirectoryResources:
    """Owns the volume and containers of one WorkingDirectory; ``close`` removes them all."""

    def __init__(
        self,
        engine: Engine,
        labels: Mapping[str, str],
        workspace: str,
        kill_grace: float,
    ) -> None:
        self.engine = engine
        self.labels = dict(labels)
        self.workspace = workspace
        self.kill_grace = kill_grace
        self.volume: str | None = None
        self.containers: dict[ContainerOptions, str] = {}
        self._users: set[tuple[str, str]] = set()

    def open(self) -> None:
        self.volume = self.engine.create_volume(self.labels)

    def container(self, options: ContainerOptions) -> str:
        """The container for these options, started on first use."""
        if options not in self.containers:
            assert self.volume is not None, "open() first"
            spec = ContainerSpec(
                image=options.image_id,
                volume=self.volume,
                workspace=self.workspace,
                labels=self.labels,
                cpus=options.cpus,
                memory=options.memory,
                shm_size=options.shm_size,
                network_mode=options.network_mode,
                files={"/.executor/python/kestra.py": kestra_module()},
            )
            self.containers[options] = self.engine.start_container(spec)
        return self.containers[options]

    def any_container(self, fallback: ContainerOptions) -> str:
        """A running container on this volume (for copying files in and out)."""
        return next(iter(self.containers.values()), None) or self.container(fallback)

    def prepare_user(self, container_id: str, user: str) -> None:
        """Give ``user`` (uid[:gid]) a passwd entry, a HOME and the workspace, once a container."""
        if (container_id, user) in self._users or not user[:1].isdigit():
            return
        run_root = getattr(self.engine, "run_root", None)
        if run_root is not None:
            code, out = run_root(
                container_id, ["/bin/sh", "-c", PREPARE_USER, "prepare-user", user, self.workspace]
            )
            if code != 0:
                raise ExecutorError(f"cannot prepare user {user} in the container: {out.strip()}")
        self._users.add((container_id, user))

    def put_files(self, container_id: str, files: Mapping[str, bytes]) -> None:
        """Place files at absolute paths inside the container (one archive)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, data in files.items():
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size = len(data)
                info.mode = 0o644
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        self.engine.put_archive(container_id, "/", buf.getvalue())

    def run(
        self,
        container_id: str,
        request: ExecRequest,
        on_line: Callable[[Stream, str], None],
        timeout: float | None,
    ) -> ExecOutcome:
        """One exec, its lines delivered on this thread; killed at ``timeout`` or on Ctrl-C."""
        started = time.monotonic()
        handle = self.engine.exec(container_id, request)
        # Bounded: a flooding task waits on the engine stream; the executor's memory stays flat.
        lines: queue.Queue[object] = queue.Queue(maxsize=256)  # batches of one chunk each
        box: list[ExecResult | BaseException] = []

        def pump() -> None:
            try:
                box.append(handle.stream(lines.put))
            except BaseException as exc:
                box.append(exc)
            finally:
                lines.put(_DONE)

        worker = threading.Thread(target=pump, name=f"exec-{request.token}", daemon=True)
        worker.start()
        deadline = started + timeout if timeout else None
        timed_out = False
        try:
            for item in _drain(lines, deadline):
                if item is None:
                    timed_out = True
                    handle.kill(self.kill_grace)
                    deadline = None
                    continue
                for stream, text in item:
                    on_line(stream, text)
        except BaseException:
            with contextlib.suppress(Exception):
                handle.kill(self.kill_grace)
            _discard_until_done(lines, worker, self.kill_grace + 10)
            raise
        worker.join()
        outcome = box[0] if box else EngineError("the exec ended without a result")
        if isinstance(outcome, BaseException):
            if isinstance(outcome, ExecutorError):
                raise outcome
            raise EngineError(f"exec failed: {outcome}") from outcome
        return ExecOutcome(outcome, timed_out, time.monotonic() - started)

    def close(self) -> list[str]:
        """Remove every container and the volume; returns what could not be removed."""
        problems: list[str] = []
        for container_id in list(self.containers.values()):
            try:
                self.engine.remove_container(container_id)
            except ExecutorError as exc:
                problems.append(str(exc))
        self.containers.clear()
        if self.volume is not None:
            try:
                self.engine.remove_volume(self.volume)
                self.volume = None
            except ExecutorError as exc:
                problems.append(str(exc))
        return problems


def _discard_until_done(lines: queue.Queue[object], worker: threading.Thread, limit: float) -> None:
    """Empty the queue so a blocked reader can finish, for at most ``limit`` seconds."""
    end = time.monotonic() + limit
    while worker.is_alive() and time.monotonic() < end:
        with contextlib.suppress(queue.Empty):
            lines.get(timeout=0.1)


def _drain(
    lines: queue.Queue[object], deadline: float | None
) -> Iterator[list[tuple[Stream, str]] | None]:
    """Yield batches of lines until the exec is done; ``None`` once when the deadline passes."""
    while True:
        wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
        try:
            item = lines.get(timeout=wait)
        except queue.Empty:
            if deadline is not None and time.monotonic() >= deadline:
                deadline = None
                yield None
            continue
        if item is _DONE:
            return
        yield item  # type: ignore[misc]
