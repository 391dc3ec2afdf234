"""One exec in a Docker container: its output as lines, its confirmed exit code, its kill.

Also the short helper execs around a task's (``Execs``): the kill and record helpers of the
wrapper (``container_paths.WRAPPER``), root commands, OOM checks, and the diagnosis of an
image without a shell.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import docker.errors

from executor.engine.api import Exec, ExecRequest, ExecResult, KillResult, LineSink
from executor.engine.api import Stream as StreamName
from executor.engine.container_paths import WRAPPER
from executor.engine.docker.client import RetryPolicy, translated
from executor.errors import EngineError, EngineLost, ImageError

OOM_COUNT = "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
SHELL = "/bin/sh"
NO_SHELL_CODES = (126, 127)
"""Exit codes of an exec whose program could not be started (checked for a missing shell)."""


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
        execs: Execs,
        container_id: str,
        exec_id: str,
        token: str,
        user: str | None = None,
    ) -> None:
        self._execs = execs
        self._container_id = container_id
        self._exec_id = exec_id
        self._token = token
        self._user = user
        self._oom_before = execs.oom_seen(container_id)

    def start(self) -> Iterator[list[tuple[StreamName, bytes]]]:
        """The exec's output as runs of one stream each, in arrival order.

        The multiplexed stream is read in large pieces and cut into frames here: the SDK reads
        each frame's header and body with separate calls and hands out one object per frame,
        which was a large part of the cost of a loud task.
        """
        api = self._execs.api
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

        response = self._execs.retry.call("start exec", open_response)
        # The connection is the exec's now: a quiet task may print nothing for hours.
        api._disable_socket_timeout(response.raw._fp.fp.raw)
        return _demultiplexed(response)

    def _sdk_frames(self) -> Iterator[list[tuple[StreamName, bytes]]]:
        frames = self._execs.retry.call(
            "start exec",
            lambda: self._execs.api.exec_start(self._exec_id, stream=True, demux=True),
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
                info = self._execs.retry.call(
                    "inspect exec", lambda: self._execs.api.exec_inspect(self._exec_id)
                )
            except EngineLost:
                raise  # the run cannot go on; the task's own result is unknowable
            except EngineError as exc:
                return ExecResult(-1, error=f"{dropped or 'exec ended'}; exit code unknown: {exc}")
            if not info.get("Running"):
                break
            time.sleep(0.2)
        code = info.get("ExitCode")
        oom = self._execs.oom_killed(self._container_id) and not self._oom_before
        if code == 137 and not oom:  # SIGKILL: ask the container's cgroup whether OOM did it
            oom = self._execs.oom_kill_count_grew(self._container_id)
        if code is None and not info.get("Running"):  # it never started: was there a shell?
            self._execs.raise_if_no_shell(self._container_id)
        if info.get("Running") or code is None:
            return ExecResult(
                -1, oom, error=f"{dropped or 'exec'}; the engine reports no exit code"
            )
        if code in NO_SHELL_CODES:  # the wrapper (run by the image's shell) may not have started
            self._execs.raise_if_no_shell(self._container_id)
        # After a dropped stream, the wrapper's own record must agree with the engine.
        recorded = self._execs.recorded_rc(self._container_id, self._token) if dropped else code
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
        code, out = self._execs.run_as(self._container_id, argv, user)
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


class Execs:
    """Starts execs in the containers of one engine, and runs the short helper ones.

    Thread-safe: what it remembers per container (OOM flags and counts) is a plain dict
    written whole per key.
    """

    def __init__(self, api: Any, retry: RetryPolicy, address: str) -> None:
        self.api = api
        self.retry = retry
        self.address = address
        self._oom_seen: dict[str, bool] = {}
        self._oom_counts: dict[str, int] = {}

    def start(self, container_id: str, request: ExecRequest) -> Exec:
        """Create one task's exec (through the wrapper); it starts when it is streamed."""
        argv = ["/bin/sh", WRAPPER, "run", request.token, *request.argv]

        def create() -> str:
            created = self.api.exec_create(
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
            exec_id = self.retry.call("create exec", create)
        except EngineError as exc:
            self.raise_if_no_shell(container_id, exc)
            raise
        return DockerExec(self, container_id, exec_id, request.token, request.user)

    def oom_seen(self, container_id: str) -> bool:
        """Whether the container's OOM flag was already up when last looked at."""
        return self._oom_seen.get(container_id, False)

    def oom_killed(self, container_id: str) -> bool:
        try:
            with translated("inspect container", self.address):
                state = self.api.inspect_container(container_id)["State"]
        except EngineError:
            return False
        self._oom_seen[container_id] = bool(state.get("OOMKilled"))
        return self._oom_seen[container_id]

    def oom_kill_count_grew(self, container_id: str) -> bool:
        """Whether the container's cgroup counted a new OOM kill (v1 and v2 alike)."""
        try:
            _, out = self.run_as_root(container_id, ["/bin/sh", "-c", OOM_COUNT])
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

    def run_as_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """A short exec as root, used for ownership fixes and records; returns (code, output)."""
        return self.run_as(container_id, argv, "0")

    def run_as(
        self, container_id: str, argv: list[str], user: str, errors: str = "replace"
    ) -> tuple[int, str]:
        """A short exec as ``user`` (the container's default when empty): (code, output)."""

        def run() -> tuple[int, str]:
            exec_id = self.api.exec_create(container_id, argv, user=user, stdout=True, stderr=True)
            out = self.api.exec_start(exec_id["Id"])
            code = self.api.exec_inspect(exec_id["Id"]).get("ExitCode")
            return int(code if code is not None else -1), out.decode("utf-8", errors)

        try:
            return self.retry.call("run a helper exec", run)
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
                image = str(self.api.inspect_container(container_id).get("Image") or "")
            stream, _ = self.api.get_archive(container_id, SHELL, chunk_size=None)
            for _chunk in stream:  # read to the end, so the connection goes back to the pool
                pass
        except docker.errors.NotFound:
            if not self._still_there(container_id):
                return  # the container went, not its shell
        except Exception:  # a diagnosis only: when it cannot tell, the original failure stands
            return
        else:
            return
        raise ImageError(
            f"image {self._image_name(image)} has no {SHELL}: the executor needs a POSIX shell"
            f" in the image (it starts the container and every task through {SHELL}); use an"
            " image that has one, or build one FROM it that adds one (e.g. busybox)"
        ) from failure

    def _still_there(self, container_id: str) -> bool:
        try:
            self.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return False
        except Exception:  # cannot tell: the diagnosis is not made
            return False
        return True

    def _image_name(self, image_id: str) -> str:
        try:
            with translated(f"inspect image {image_id}", self.address):
                tags = self.api.inspect_image(image_id).get("RepoTags") or []
        except EngineError:
            tags = []
        return str(tags[0]) if tags else image_id.removeprefix("sha256:")[:12]

    def run_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """Public form of a short root exec (ownership fixes, passwd entries, listings).

        Bytes that are not UTF-8 are kept as surrogates (file names must survive a listing).
        """
        return self.run_as(container_id, argv, "0", "surrogateescape")

    def recorded_rc(self, container_id: str, token: str) -> int | None:
        try:
            code, out = self.run_as_root(container_id, ["/bin/sh", WRAPPER, "rc", token])
        except EngineError:
            return None
        try:
            return int(out.strip()) if code == 0 and out.strip() else None
        except ValueError:
            return None
