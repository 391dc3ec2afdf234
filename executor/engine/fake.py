"""A fake backend: the ContainerEngine Protocol with no engine behind it, for fast tests.

``EXECUTOR_ENGINE=fake`` picks it through the same factory as Docker. It records what it was
asked for; its execs understand ``echo`` and ``exit`` lines only (``behaviour``). It is checked
against the Protocols by mypy through ``_check`` (and by a test at run time): a change to the
interface breaks it, as it should.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from executor.engine.api import (
    Backend,
    BackendClass,
    BuildRequest,
    Capabilities,
    ContainerEngine,
    ContainerSpec,
    Exec,
    ExecRequest,
    ExecResult,
    ImageCommand,
    ImageStore,
    KillResult,
    LineSink,
    RegistryAuth,
    Resource,
    Stream,
)
from executor.engine.containers import ContainerBackend
from executor.errors import ImageError
from executor.settings import Settings

NO_IMAGES = "the fake engine builds and pushes no images"

Behaviour = Callable[[ExecRequest], tuple[list[tuple[Stream, str]], int]]


def echo_behaviour(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
    """Interpret a tiny subset of shell: `echo X`, `echo X >&2`, `exit N`, one per line."""
    out: list[tuple[Stream, str]] = []
    for line in request.argv[-1].splitlines():
        line = line.strip()
        if line.startswith("echo "):
            text = line[5:]
            stream = Stream.STDERR if text.endswith(">&2") else Stream.STDOUT
            out.append((stream, text.removesuffix(">&2").strip().strip("'\"")))
        elif line.startswith("exit "):
            return out, int(line[5:])
    return out, 0


@dataclass
class FakeExec:
    engine: FakeBackend
    request: ExecRequest

    def stream(self, sink: LineSink) -> ExecResult:
        lines, code = self.engine.behaviour(self.request)
        if lines:
            sink(list(lines))
        return ExecResult(code)

    def kill(self, grace_seconds: float) -> KillResult:
        self.engine.killed.append(self.request.token)
        self.engine.kill_event(self.request.token).set()
        return KillResult()


@dataclass
class FakeBackend(ContainerBackend):
    """Records what the runner asked for; execs behave as ``behaviour`` says."""

    behaviour: Behaviour = echo_behaviour
    capabilities: Capabilities = field(default_factory=Capabilities)
    address: str = "fake"
    volumes: set[str] = field(default_factory=set)
    volume_options: dict[str, dict[str, str]] = field(default_factory=dict)
    containers: dict[str, ContainerSpec] = field(default_factory=dict)
    execs: list[tuple[str, ExecRequest]] = field(default_factory=list)
    archives: list[tuple[str, str]] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)  # image -> its default USER
    commands: dict[str, ImageCommand] = field(default_factory=dict)  # image -> ENTRYPOINT, CMD
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _kills: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def kill_event(self, token: str) -> threading.Event:
        """Set when the exec of ``token`` is killed (a behaviour may wait on it)."""
        with self._lock:
            return self._kills.setdefault(token, threading.Event())

    @classmethod
    def from_settings(cls, settings: Settings) -> FakeBackend:
        return cls()

    @classmethod
    def describe(cls, settings: Settings, timeout: float) -> dict[str, str]:
        return {"address": "fake", "version": "", "apiVersion": ""}

    def ping(self) -> None:
        pass

    def engine_id(self) -> str:
        return "fake"

    def image_id(self, ref: str) -> str | None:
        return f"sha256:{abs(hash(ref)):064x}"[:71]

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> str:
        return self.image_id(ref) or ""

    def repo_digest(self, ref: str, image_id: str) -> str | None:
        return None

    def image_command(self, image: str) -> ImageCommand:
        return self.commands.get(image, ImageCommand((), ()))

    def image_user(self, image: str) -> str:
        return self.users.get(image, "")

    def create_volume(
        self, labels: Mapping[str, str], options: Mapping[str, str] | None = None
    ) -> str:
        name = f"vol{next(self._ids)}"
        self.volumes.add(name)
        self.volume_options[name] = dict(options or {})
        return name

    def remove_volume(self, name: str) -> None:
        self.volumes.discard(name)

    def volume_path(self, name: str) -> Path | None:
        return None

    def start_container(self, spec: ContainerSpec) -> str:
        cid = f"c{next(self._ids)}"
        self.containers[cid] = spec
        self.created.append(cid)
        return cid

    def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    def exec(self, container_id: str, request: ExecRequest) -> Exec:
        self.execs.append((container_id, request))
        return FakeExec(self, request)

    def run_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        return 0, ""

    def put_archive(self, container_id: str, path: str, data: IO[bytes] | bytes) -> None:
        self.archives.append((container_id, path))

    def get_archive(
        self, container_id: str, path: str, buffer: bytearray | None = None
    ) -> Iterator[bytes]:
        yield bytes(1024)  # an empty archive: nothing the fake runs writes files

    def list_resources(self, label_filter: Mapping[str, str | None]) -> list[Resource]:
        return []

    def remove_resource(self, resource: Resource) -> None:
        pass

    def build_task_image(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        raise ImageError(NO_IMAGES)

    def push_image(
        self, ref: str, auth: RegistryAuth | None, on_line: Callable[[str], None]
    ) -> str | None:
        raise ImageError(NO_IMAGES)

    def image_store(self) -> ImageStore:
        raise ImageError(NO_IMAGES)


def _check(fake: FakeBackend) -> tuple[ContainerEngine, Backend, BackendClass]:
    return fake, fake, FakeBackend  # mypy: the fake satisfies the protocols, as Docker does
