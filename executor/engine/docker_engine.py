"""The Docker backend of :class:`~executor.engine.api.Engine` (docker SDK, low-level API)."""

from __future__ import annotations

import contextlib
import io
import math
import os
import socket
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import IO, Any, cast

import docker.errors
import docker.types

from executor.engine.api import (
    BuildRequest,
    ContainerSpec,
    Exec,
    ExecRequest,
    ExecResult,
    ImageCommand,
    KillResult,
    LineSink,
    RegistryAuth,
    Resource,
)
from executor.engine.api import Stream as StreamName
from executor.engine.archive import Body, open_unframed
from executor.engine.client import DEFAULT_SOCKET, RetryPolicy, translated
from executor.engine.images import DockerImages, find_by_digest
from executor.engine.reference import digest_in
from executor.engine.reference import parse as parse_reference
from executor.errors import EngineError, EngineLost, ImageError

RECORD_ROOT = "/.executor"
WRAPPER = f"{RECORD_ROOT}/wrapper.sh"
OOM_COUNT = "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
ARCHIVE_CHUNK = 1024 * 1024
LOCAL_BASE_URL = "http+docker://localhost"  # the SDK's address of a local unix socket
KEEPALIVE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
SHELL = "/bin/sh"
NO_SHELL_CODES = (126, 127)
"""Exit codes of an exec whose program could not be started (checked for a missing shell)."""


def _engine_beside_us(api: Any) -> bool:
    """Whether the engine answering ``api`` runs with this process's files: it names our host,
    and its data directory is here."""
    try:
        info = api.info()
    except docker.errors.DockerException:
        return False
    root = str(info.get("DockerRootDir") or "")
    return info.get("Name") == socket.gethostname() and bool(root) and Path(root).is_dir()


def wrapper_source() -> bytes:
    return resources.files("executor.engine").joinpath("wrapper.sh").read_bytes()


def _record_tar(files: Mapping[str, bytes]) -> bytes:
    """A tar of the executor's own directory, world-writable so any task user can record."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in (RECORD_ROOT, f"{RECORD_ROOT}/runs"):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777
            tar.addfile(info)
        for path, data in {WRAPPER: wrapper_source(), **files}.items():
            parent = path.lstrip("/").rsplit("/", 1)[0]
            if parent and parent != RECORD_ROOT.lstrip("/") and not parent.endswith("runs"):
                info = tarfile.TarInfo(parent)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _auth_config(auth: RegistryAuth | None) -> dict[str, str] | None:
    """Docker's ``X-Registry-Auth`` fields for ``auth`` (the SDK encodes them in a header)."""
    if auth is None:
        return None
    fields = {
        "serveraddress": auth.registry,
        "username": auth.username,
        "password": auth.password,
        "auth": auth.auth,
        "registrytoken": auth.registry_token,
        "identitytoken": auth.identity_token,
    }
    return {k: v for k, v in fields.items() if v}


def _without(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret value masked (an engine may echo what it was sent)."""
    for value in secrets:
        text = text.replace(value, "******")
    return text


def _limits(spec: ContainerSpec) -> dict[str, Any]:
    """The host config beyond the basics: swap, pids limit and devices (GPUs), when asked for."""
    limits: dict[str, Any] = {}
    if spec.memory_swap:
        swap = spec.memory_swap.strip()
        limits["memswap_limit"] = -1 if swap == "-1" else _memory_bytes(swap)
    if spec.pids_limit:
        limits["pids_limit"] = spec.pids_limit
    if spec.device_requests:
        limits["device_requests"] = [
            docker.types.DeviceRequest(
                driver=r.driver,
                count=r.count,
                device_ids=list(r.device_ids),
                capabilities=[list(c) for c in r.capabilities],
                options=dict(r.options),
            )
            for r in spec.device_requests
        ]
    return limits


def _start(api: Any, container_id: str, spec: ContainerSpec) -> None:
    """Start the container; an engine that cannot give it the devices asked for says so."""
    try:
        api.start(container_id)
    except docker.errors.APIError as exc:
        if spec.device_requests and "device driver" in str(exc):
            # Not transient: no retry will give the engine a GPU runtime.
            raise EngineError(
                "the Docker engine cannot give the container the devices in deviceRequests: "
                f"it has no GPU runtime for them ({exc.explanation or exc}); install the "
                "vendor's container toolkit (e.g. nvidia-container-toolkit) on the engine's host"
            ) from exc
        raise


def _memory_bytes(text: str) -> int:
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().rstrip("ib")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(float(t))


MAX_LINE = 16 * 1024
"""Bytes of one output line beyond which it is cut into pieces, like Docker's log drivers do."""
MAX_PROTOCOL_LINE = 1024 * 1024
"""A line starting ``::{`` (the script protocol) may grow this long, so outputs stay whole."""
PROTOCOL_START = b"::{"


class LineSplitter:
    """Cuts one output stream, chunk by chunk, into text lines, in linear time and bounded memory.

    A line longer than ``limit`` bytes comes out as several pieces of at most ``limit`` bytes
    (a protocol line ``::{...}::`` as one of at most ``protocol_limit``), each cut on a UTF-8
    character boundary, so no more than that is ever held between chunks. Bytes are decoded
    only once a piece or a line is complete, so a character split across chunks is whole;
    invalid UTF-8 becomes U+FFFD.

    Args:
        limit: the longest piece of a plain line, in bytes.
        protocol_limit: the longest a line starting ``::{`` may grow before it is cut.
    """

    def __init__(self, limit: int = MAX_LINE, protocol_limit: int = MAX_PROTOCOL_LINE) -> None:
        if limit < 4:
            raise ValueError("a piece must hold any UTF-8 character: limit >= 4")
        self.limit = limit
        self.protocol_limit = max(limit, protocol_limit)
        self._buffer = bytearray()  # the unfinished line, or the unfinished piece of one
        self._at_line_start = True  # no piece of the unfinished line was handed out yet

    @property
    def buffered(self) -> int:
        """Bytes held for the unfinished line."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[str]:
        """The lines (and pieces of long lines) that ``chunk`` completes."""
        *complete, rest = chunk.split(b"\n")
        out: list[str] = []
        for segment in complete:
            if self._at_line_start and not self._buffer and len(segment) <= self.limit:
                out.append(segment.decode("utf-8", errors="replace").rstrip("\r"))
            else:
                self._append(segment, out)
                out.append(self._take())
        self._append(rest, out)
        return out

    def finish(self) -> list[str]:
        """The unfinished last line, if the stream ended without a newline."""
        return [self._take()] if self._buffer else []

    def _limit(self) -> int:
        starts_protocol = self._at_line_start and self._buffer.startswith(PROTOCOL_START)
        return self.protocol_limit if starts_protocol else self.limit

    def _append(self, data: bytes, out: list[str]) -> None:
        if len(data) + len(self._buffer) <= self.limit:  # the usual case: it fits as it is
            self._buffer += data
            return
        view = memoryview(data)
        while view:
            room = self._limit() - len(self._buffer)
            if len(view) <= room:
                self._buffer += view
                return
            if room > 0:  # fill up, then look again: the line may have turned out a protocol one
                self._buffer += view[:room]
                view = view[room:]
                continue
            out.append(self._cut())

    def _cut(self) -> str:
        end = _char_boundary(self._buffer, min(len(self._buffer), self.limit))
        piece = self._buffer[:end].decode("utf-8", errors="replace")
        del self._buffer[:end]
        self._at_line_start = False
        return piece

    def _take(self) -> str:
        line = self._buffer.decode("utf-8", errors="replace").rstrip("\r")
        self._buffer.clear()
        self._at_line_start = True
        return line


def _char_boundary(data: bytearray, end: int) -> int:
    """``end``, or the start of the UTF-8 character that cutting ``data`` at ``end`` would split."""
    for start in range(end - 1, max(end - 4, -1), -1):
        lead = data[start]
        if lead & 0xC0 != 0x80:  # not a continuation byte: the last character starts here
            size = (
                2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if lead >= 0xF0 else 1
            )
            return start if start + size > end else end
    return end  # only continuation bytes: not UTF-8, any cut will do


STREAM_READ = 256 * 1024
_FRAME_STREAMS = {1: StreamName.STDOUT, 2: StreamName.STDERR}


def _demultiplexed(response: Any) -> Iterator[list[tuple[StreamName, bytes]]]:
    """Docker's multiplexed stream (8-byte frame headers) as runs of one stream each.

    Reads whatever has arrived, up to :data:`STREAM_READ` bytes at once (the buffered reader
    first hands out what came in with the HTTP headers), so a quiet task's line is delivered at
    once and a loud task's output in few large pieces. Closing the response ends the exec's
    stream.
    """
    with contextlib.closing(response):
        read = response.raw._fp.fp.read1
        pending = b""
        while True:
            data = read(STREAM_READ)
            if not data:
                if pending:
                    raise EngineError(f"output stream ended inside a frame ({len(pending)} bytes)")
                return
            buf = pending + data if pending else data
            runs: list[tuple[StreamName, list[bytes]]] = []
            pos, end = 0, len(buf)
            while end - pos >= 8:
                size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
                if end - pos - 8 < size:
                    break
                stream = _FRAME_STREAMS.get(buf[pos])
                body = buf[pos + 8 : pos + 8 + size]
                pos += 8 + size
                if stream is None or not body:
                    continue
                if runs and runs[-1][0] is stream:
                    runs[-1][1].append(body)
                else:
                    runs.append((stream, [body]))
            pending = buf[pos:]
            if runs:
                yield [(stream, b"".join(bodies)) for stream, bodies in runs]


class DockerExec:
    """One running exec: its streamed lines and its confirmed exit code."""

    def __init__(
        self,
        engine: DockerEngine,
        container_id: str,
        exec_id: str,
        token: str,
        user: str | None = None,
    ) -> None:
        self._engine = engine
        self._container_id = container_id
        self._exec_id = exec_id
        self._token = token
        self._user = user
        self._oom_before = engine._oom_seen.get(container_id, False)

    def start(self) -> Iterator[list[tuple[StreamName, bytes]]]:
        """The exec's output as runs of one stream each, in arrival order.

        The multiplexed stream is read in large pieces and cut into frames here: the SDK reads
        each frame's header and body with separate calls and hands out one object per frame,
        which was a large part of the cost of a loud task.
        """
        api = self._engine._api
        if api.base_url.startswith(("http+docker://ssh", "http+docker://localnpipe")):
            return self._sdk_frames()  # sockets of their own kind: the SDK reads them

        def open_response() -> Any:
            response = api._post_json(
                api._url("/exec/{0}/start", self._exec_id),
                headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                data={"Tty": False, "Detach": False},
                stream=True,
            )
            try:
                api._raise_for_status(response)
            except BaseException:
                response.close()
                raise
            return response

        response = self._engine._retry.call("start exec", open_response)
        # The connection is the exec's now: a quiet task may print nothing for hours.
        api._disable_socket_timeout(response.raw._fp.fp.raw)
        return _demultiplexed(response)

    def _sdk_frames(self) -> Iterator[list[tuple[StreamName, bytes]]]:
        frames = self._engine._retry.call(
            "start exec",
            lambda: self._engine._api.exec_start(self._exec_id, stream=True, demux=True),
        )
        for out, err in frames:
            if out:
                yield [(StreamName.STDOUT, out)]
            if err:
                yield [(StreamName.STDERR, err)]

    def stream(self, sink: LineSink) -> ExecResult:
        """Deliver lines as they arrive, then confirm the exit code through the engine."""
        splitters = {StreamName.STDOUT: LineSplitter(), StreamName.STDERR: LineSplitter()}
        dropped: str | None = None
        try:
            for runs in self.start():
                batch: list[tuple[StreamName, str]] = []
                for name, chunk in runs:
                    batch.extend((name, line) for line in splitters[name].feed(chunk))
                if batch:
                    sink(batch)
        except (docker.errors.DockerException, OSError, EngineError) as exc:
            dropped = f"output stream dropped: {exc}"
        except Exception as exc:  # requests' errors surface here too; none may read as success
            dropped = f"output stream dropped: {type(exc).__name__}: {exc}"
        tail = [(name, line) for name, lines in splitters.items() for line in lines.finish()]
        if tail:
            sink(tail)
        return self._confirm(dropped)

    def _confirm(self, dropped: str | None) -> ExecResult:
        """The exit code from exec inspect, cross-checked with the wrapper's record."""
        deadline = time.monotonic() + (86400 if dropped else 30)
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                info = self._engine._retry.call(
                    "inspect exec", lambda: self._engine._api.exec_inspect(self._exec_id)
                )
            except EngineLost:
                raise  # the run cannot go on; the task's own result is unknowable
            except EngineError as exc:
                return ExecResult(-1, error=f"{dropped or 'exec ended'}; exit code unknown: {exc}")
            if not info.get("Running"):
                break
            time.sleep(0.2)
        code = info.get("ExitCode")
        oom = self._engine._oom_killed(self._container_id) and not self._oom_before
        if code == 137 and not oom:  # SIGKILL: ask the container's cgroup whether OOM did it
            oom = self._engine._oom_kill_count_grew(self._container_id)
        if code is None and not info.get("Running"):  # it never started: was there a shell?
            self._engine.raise_if_no_shell(self._container_id)
        if info.get("Running") or code is None:
            return ExecResult(
                -1, oom, error=f"{dropped or 'exec'}; the engine reports no exit code"
            )
        if code in NO_SHELL_CODES:  # the wrapper (run by the image's shell) may not have started
            self._engine.raise_if_no_shell(self._container_id)
        # After a dropped stream, the wrapper's own record must agree with the engine.
        recorded = self._engine._recorded_rc(self._container_id, self._token) if dropped else code
        if recorded is not None and recorded != code:
            return ExecResult(
                -1, oom, error=f"engine reports exit code {code}, the task recorded {recorded}"
            )
        return ExecResult(int(code), oom, error=None)

    def kill(self, grace_seconds: float) -> KillResult:
        """TERM, then KILL, every process of the task through a second exec; report survivors.

        The kill runs as the task's user: only that user may read its processes' environment,
        where the cookie that finds escaped processes lives (Docker grants root no
        CAP_SYS_PTRACE). Whatever survives that (a process that changed user) gets a second
        try as root, which may signal anyone; it is handed the survivors by pid, as root
        cannot read the cookie of another user's process.
        """
        grace = max(1, math.ceil(grace_seconds))
        result = self._kill_as(self._user or "", grace, ())
        if not result.complete and not _is_root(self._user):
            result = self._kill_as("0", 0, result.survivors)
        return result

    def _kill_as(self, user: str, grace: int, known: tuple[int, ...]) -> KillResult:
        argv = ["/bin/sh", WRAPPER, "kill", self._token, str(grace), *map(str, known)]
        code, out = self._engine._run_as(self._container_id, argv, user)
        if code == 0:
            return KillResult()
        survivors = tuple(
            int(pid)
            for line in out.splitlines()
            if line.startswith("survivors:")
            for pid in line.removeprefix("survivors:").split()
            if pid.isdigit()
        )
        if survivors:
            return KillResult(survivors)
        detail = out.strip()[-200:] or "no output"
        return KillResult(error=f"the kill helper exited {code}: {detail}")


def _is_root(user: str | None) -> bool:
    return user is not None and user.split(":", 1)[0] in ("0", "root")


class DockerEngine:
    """Talks to a Docker engine through the docker SDK's low-level API."""

    def __init__(
        self, client: Any, retry: RetryPolicy | None = None, address: str | None = None
    ) -> None:
        self._client = client
        self._api = client.api
        self.address = address or DEFAULT_SOCKET
        self._retry = (retry or RetryPolicy()).for_engine(self.address)
        self._oom_seen: dict[str, bool] = {}
        self._oom_counts: dict[str, int] = {}
        self._shares_files: bool | None = None  # mounts_host_dirs(), asked once

    def ping(self) -> None:
        self._retry.call("ping the engine", self._api.ping)

    def engine_id(self) -> str:
        """The engine's own id (``docker info``'s ID): which host's engine runs our containers."""
        info = self._retry.call("read the engine's id", self._api.info)
        return str(info.get("ID") or "")

    def image_id(self, ref: str) -> str | None:
        parsed = parse_reference(ref)
        if parsed.digest:
            listed = self._retry.call(f"list images for {ref}", self._api.images)
            return find_by_digest(listed, parsed)
        try:
            with translated(f"inspect image {ref}", self.address):
                return str(self._api.inspect_image(ref)["Id"])
        except ImageError:
            return None
        except EngineError as exc:
            if "No such image" in str(exc) or "not found" in str(exc).lower():
                return None
            raise

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> str:
        parsed = parse_reference(ref)
        registry = (auth.registry if auth and auth.registry else None) or parsed.domain
        source = f"registry {registry}" if registry else "Docker Hub"
        try:
            with translated(f"pull {ref}", self.address):
                self._api.pull(
                    parsed.repository, tag=parsed.pull_tag, auth_config=_auth_config(auth)
                )
        except EngineLost:
            raise
        except (EngineError, ImageError) as exc:
            detail = _without(exc.message, auth.secrets if auth else ())
            raise ImageError(f"cannot pull image {ref} from {source}: {detail}") from None
        found = self.image_id(str(parsed))
        if not found:
            # A digest pins content: the pulled image must hold it, or it is not the one asked for.
            what = "no image holding that digest" if parsed.digest else "no such image"
            raise ImageError(f"pulled {ref} from {source} but the engine lists {what}")
        return found

    def build_task_image(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """A task's ``docker.Build`` on this engine (see ``DockerImages.build_task_image``)."""
        return DockerImages(self._client).build_task_image(request, on_line)

    def push_image(
        self, ref: str, auth: RegistryAuth | None, on_line: Callable[[str], None]
    ) -> str | None:
        """Push ``ref`` with ``auth``; the registry's digest. Credentials never reach a message.

        Raises:
            ImageError: the registry or the engine refused it.
        """
        try:
            return DockerImages(self._client).push(ref, _auth_config(auth), on_line)
        except EngineLost:
            raise
        except (EngineError, ImageError) as exc:
            raise ImageError(_without(exc.message, auth.secrets if auth else ())) from None

    def repo_digest(self, ref: str, image_id: str) -> str | None:
        try:
            with translated(f"inspect image {image_id}", self.address):
                listed = self._api.inspect_image(image_id).get("RepoDigests") or []
        except ImageError:
            return None
        return digest_in(parse_reference(ref), listed)

    def image_command(self, image: str) -> ImageCommand:
        info = self._retry.call(f"inspect image {image}", lambda: self._api.inspect_image(image))
        config = info.get("Config") or {}
        return ImageCommand(
            entrypoint=tuple(str(a) for a in config.get("Entrypoint") or ()),
            cmd=tuple(str(a) for a in config.get("Cmd") or ()),
        )

    def image_user(self, image: str) -> str:
        info = self._retry.call(f"inspect image {image}", lambda: self._api.inspect_image(image))
        user = (info.get("Config") or {}).get("User") or ""
        return "" if _is_root(user) else str(user)

    def create_volume(
        self, labels: Mapping[str, str], options: Mapping[str, str] | None = None
    ) -> str:
        name = f"executor-ws-{uuid.uuid4().hex[:12]}"
        opts = dict(options) if options else None
        self._retry.call(
            "create volume",
            lambda: self._api.create_volume(
                name, driver="local" if opts else None, driver_opts=opts, labels=dict(labels)
            ),
        )
        return name

    def mounts_host_dirs(self) -> bool:
        """Whether the engine can mount this process's directories: it runs beside us, we
        are root.

        Root, because what containers write in a directory mounted from here belongs to
        root, and this process must be able to remove it. Beside us: on a local socket, the
        engine names our host and its data directory is one we see. A process in a container
        on the host's socket (a worker of compose.yaml) fails that test: its paths are not the
        host's. A process in the same container as its engine (a CI machine) passes it.
        """
        if self._shares_files is None:
            self._shares_files = (
                self._api.base_url == LOCAL_BASE_URL
                and os.geteuid() == 0
                and _engine_beside_us(self._api)
            )
        return self._shares_files

    def remove_volume(self, name: str) -> None:
        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self._api.remove_volume(name, force=True)

        self._retry.call(f"remove volume {name}", remove)

    def start_container(self, spec: ContainerSpec) -> str:
        host_config = self._api.create_host_config(
            init=True,
            binds={
                spec.volume: {"bind": spec.workspace, "mode": "rw"},
                **{
                    host: {"bind": inside, "mode": "ro"}
                    for host, inside in spec.read_only_binds.items()
                },
            },
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            mem_limit=_memory_bytes(spec.memory) if spec.memory else None,
            shm_size=spec.shm_size,
            network_mode=spec.network_mode,
            **_limits(spec),
        )

        def create() -> str:
            created = self._api.create_container(
                spec.image,
                command=["-c", KEEPALIVE],
                entrypoint=["/bin/sh"],
                working_dir=spec.workspace,
                labels=dict(spec.labels),
                environment=dict(spec.env),
                host_config=host_config,
                name=f"executor-{uuid.uuid4().hex[:12]}",
            )
            return str(created["Id"])

        container_id = self._retry.call(f"create container of {spec.image}", create)
        try:
            self._retry.call(
                "install the exec wrapper",
                lambda: self._api.put_archive(container_id, "/", _record_tar(spec.files)),
            )
            self._retry.call("start container", lambda: _start(self._api, container_id, spec))
        except BaseException:
            self.remove_container(container_id)
            raise
        return container_id

    def remove_container(self, container_id: str) -> None:
        def remove() -> None:
            try:
                self._api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise

        self._retry.call(f"remove container {container_id[:12]}", remove)

    def exec(self, container_id: str, request: ExecRequest) -> Exec:
        argv = ["/bin/sh", WRAPPER, "run", request.token, *request.argv]

        def create() -> str:
            created = self._api.exec_create(
                container_id,
                argv,
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                environment=dict(request.env),
                workdir=request.workdir,
                user=request.user or "",
            )
            return str(created["Id"])

        try:
            exec_id = self._retry.call("create exec", create)
        except EngineError as exc:
            self.raise_if_no_shell(container_id, exc)
            raise
        return DockerExec(self, container_id, exec_id, request.token, request.user)

    def put_archive(self, container_id: str, path: str, data: IO[bytes] | bytes) -> None:
        ok = self._retry.call(
            f"copy into {path}", lambda: self._api.put_archive(container_id, path, data)
        )
        if not ok:
            raise EngineError(f"the engine refused the archive for {path}")

    def get_archive(
        self, container_id: str, path: str, buffer: bytearray | None = None
    ) -> Iterator[bytes]:
        """The archive of ``path`` in chunks of up to 1 MiB (``len(buffer)`` when given).

        Without ``buffer`` each chunk is a fresh buffer (a caller may queue them); with it,
        every chunk is a view of ``buffer``, valid until the next one is asked for: nothing is
        allocated, zeroed or faulted in per chunk. The body comes unframed (see
        :mod:`executor.engine.archive`), each chunk one read straight into its buffer.
        """

        def open_body() -> Body:
            body = open_unframed(self._api, container_id, path)
            return body if body is not None else self._sdk_archive(container_id, path)

        body = self._retry.call(f"copy out of {path}", open_body)
        # Closing the body ends the engine's copy at once (a stream left unread on Ctrl-C or a
        # full disk kept it going and the container locked for minutes).
        with translated(f"copy out of {path}", self.address), contextlib.closing(body):
            view = memoryview(buffer) if buffer is not None else None
            while True:
                chunk = buffer if buffer is not None else bytearray(ARCHIVE_CHUNK)
                size = body.readinto(chunk)
                if not size:
                    return
                if view is not None:
                    yield cast(bytes, view[:size])  # read like bytes everywhere
                    continue
                if size < len(chunk):
                    del chunk[size:]
                yield cast(bytes, chunk)  # copying it would cost

    def _sdk_archive(self, container_id: str, path: str) -> Body:
        """The archive through the SDK's own request; its errors are the ones reported."""
        api = self._api
        url = api._url("/containers/{0}/archive", container_id)
        # identity: asked for gzip, the engine compresses at some 25 MB/s
        response = api._get(
            url, params={"path": path}, stream=True, headers={"Accept-Encoding": "identity"}
        )
        try:
            api._raise_for_status(response)
        except BaseException:
            response.close()
            raise
        return _SdkBody(response)

    def volume_path(self, name: str) -> Path | None:
        """Where a plain local volume's files are on this host, when the engine runs here.

        ``None`` for a remote engine (anything but the local unix socket), a volume with a
        driver or options of its own, or a directory this process may not read. An overlay
        volume (see ``Workdir.layer_over``) counts while the engine has it mounted.
        """
        if self._api.base_url != LOCAL_BASE_URL:
            return None
        try:
            with translated(f"inspect volume {name}", self.address):
                info = self._api.inspect_volume(name)
        except EngineError:
            return None
        options = info.get("Options") or {}
        if info.get("Driver") != "local":
            return None
        path = Path(info.get("Mountpoint") or "")
        if options and (options.get("type") != "overlay" or not os.path.ismount(path)):
            return None
        readable = path.is_absolute() and path.is_dir() and os.access(path, os.R_OK | os.X_OK)
        return path if readable else None

    def list_resources(self, label_filter: Mapping[str, str | None]) -> list[Resource]:
        labels = [k if v is None else f"{k}={v}" for k, v in label_filter.items()]
        found: list[Resource] = []
        containers = self._retry.call(
            "list containers", lambda: self._api.containers(all=True, filters={"label": labels})
        )
        for c in containers:
            found.append(
                Resource("container", c["Id"], c["Names"][0].lstrip("/"), c["Labels"] or {})
            )
        volumes = self._retry.call(
            "list volumes", lambda: self._api.volumes(filters={"label": labels})
        )
        for v in volumes.get("Volumes") or []:
            found.append(Resource("volume", v["Name"], v["Name"], v.get("Labels") or {}))
        networks = self._retry.call(
            "list networks", lambda: self._api.networks(filters={"label": labels})
        )
        for n in networks:
            found.append(Resource("network", n["Id"], n["Name"], n.get("Labels") or {}))
        return found

    def remove_resource(self, resource: Resource) -> None:
        if resource.kind == "container":
            self.remove_container(resource.id)
        elif resource.kind == "volume":
            self.remove_volume(resource.name)
        else:
            self._retry.call(
                f"remove network {resource.name}", lambda: self._api.remove_network(resource.id)
            )

    # helpers for DockerExec

    def _oom_killed(self, container_id: str) -> bool:
        try:
            with translated("inspect container", self.address):
                state = self._api.inspect_container(container_id)["State"]
        except EngineError:
            return False
        self._oom_seen[container_id] = bool(state.get("OOMKilled"))
        return self._oom_seen[container_id]

    def _oom_kill_count_grew(self, container_id: str) -> bool:
        """Whether the container's cgroup counted a new OOM kill (v1 and v2 alike)."""
        try:
            _, out = self._run_root(container_id, ["/bin/sh", "-c", OOM_COUNT])
        except EngineError:
            return False
        count = next(
            (
                int(line.split()[1])
                for line in out.splitlines()
                if line.startswith("oom_kill ") and line.split()[1].isdigit()
            ),
            0,
        )
        grew = count > self._oom_counts.get(container_id, 0)
        self._oom_counts[container_id] = count
        return grew

    def _run_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """A short exec as root, used for ownership fixes and records; returns (code, output)."""
        return self._run_as(container_id, argv, "0")

    def _run_as(
        self, container_id: str, argv: list[str], user: str, errors: str = "replace"
    ) -> tuple[int, str]:
        """A short exec as ``user`` (the container's default when empty): (code, output)."""

        def run() -> tuple[int, str]:
            exec_id = self._api.exec_create(container_id, argv, user=user, stdout=True, stderr=True)
            out = self._api.exec_start(exec_id["Id"])
            code = self._api.exec_inspect(exec_id["Id"]).get("ExitCode")
            return int(code if code is not None else -1), out.decode("utf-8", errors)

        try:
            return self._retry.call("run a helper exec", run)
        except EngineError as exc:
            self.raise_if_no_shell(container_id, exc)
            raise

    def raise_if_no_shell(self, container_id: str, failure: BaseException | None = None) -> None:
        """Raise ImageError when the container's image has no ``/bin/sh``; asked after a failure.

        Every exec (and the keepalive) runs through the image's shell: without one the
        container exits at once and the engine's own words ("is not running", "No such exec
        instance", exit 127) would hide the cause.
        """
        try:
            with translated("inspect container", self.address):
                image = str(self._api.inspect_container(container_id).get("Image") or "")
            stream, _ = self._api.get_archive(container_id, SHELL, chunk_size=None)
            for _chunk in stream:  # read to the end, so the connection goes back to the pool
                pass
        except docker.errors.NotFound as exc:
            if f"find the file {SHELL}" not in str(exc):
                return
        except Exception:  # a diagnosis only: when it cannot tell, the original failure stands
            return
        else:
            return
        raise ImageError(
            f"image {self._image_name(image)} has no {SHELL}: the executor needs a POSIX shell"
            f" in the image (it starts the container and every task through {SHELL}); use an"
            " image that has one, or build one FROM it that adds one (e.g. busybox)"
        ) from failure

    def _image_name(self, image_id: str) -> str:
        try:
            with translated(f"inspect image {image_id}", self.address):
                tags = self._api.inspect_image(image_id).get("RepoTags") or []
        except EngineError:
            tags = []
        return str(tags[0]) if tags else image_id.removeprefix("sha256:")[:12]

    def run_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """Public form of a short root exec (ownership fixes, passwd entries, listings).

        Bytes that are not UTF-8 are kept as surrogates (file names must survive a listing).
        """
        return self._run_as(container_id, argv, "0", "surrogateescape")

    def _recorded_rc(self, container_id: str, token: str) -> int | None:
        try:
            code, out = self._run_root(container_id, ["/bin/sh", WRAPPER, "rc", token])
        except EngineError:
            return None
        try:
            return int(out.strip()) if code == 0 and out.strip() else None
        except ValueError:
            return None


class _SdkBody:
    """A response of the SDK read like :class:`~executor.engine.archive.Body`."""

    def __init__(self, response: Any) -> None:
        self._response = response
        # http.client's response under urllib3's: it undoes the chunked encoding into our buffer
        self._raw = getattr(response.raw, "_fp", None) or response.raw

    def readinto(self, buffer: Any) -> int:
        return int(self._raw.readinto(buffer))

    def close(self) -> None:
        self._response.close()
