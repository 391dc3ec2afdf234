"""The Docker backend's error handling, with a stand-in for the SDK's low-level API."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from executor.engine.api import Stream
from executor.engine.docker.backend import DockerBackend
from executor.engine.docker.client import RetryPolicy, translated
from executor.engine.docker.exec import MAX_LINE, MAX_PROTOCOL_LINE, LineSplitter
from executor.engine.docker.images import DockerImages
from executor.errors import EngineError, ImageError, TransientEngineError


class StubAPI:
    """Answers the few low-level calls an exec makes; the stream can drop mid-way."""

    def __init__(
        self,
        chunks: list[tuple[bytes | None, bytes | None]],
        drop: bool,
        inspect: dict[str, Any],
        recorded: str = "",
    ) -> None:
        self.chunks, self.drop, self.inspect, self.recorded = chunks, drop, inspect, recorded
        self.helper_execs: list[list[str]] = []

    def exec_create(self, container: str, cmd: list[str], **kwargs: Any) -> dict[str, str]:
        if cmd[2] in ("rc", "kill"):
            self.helper_execs.append(cmd)
            return {"Id": "helper"}
        return {"Id": "task"}

    base_url = "http+docker://localhost"

    def exec_start(self, exec_id: str, stream: bool = False, demux: bool = False) -> Any:
        assert exec_id == "helper", "a task's exec is read off its socket, not through the SDK"
        return self.recorded.encode()

    def _url(self, path: str, *args: str) -> str:
        return path.format(*args)

    def _post_json(self, url: str, **kwargs: Any) -> Any:
        """The exec's upgraded connection: Docker's frames, handed out a few bytes at a time."""
        frames = b"".join(
            bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
            for out, err in self.chunks
            for kind, data in ((1, out), (2, err))
            if data
        )
        return FakeResponse(frames, self.drop)

    def _raise_for_status(self, response: Any) -> None:
        pass

    def _disable_socket_timeout(self, sock: Any) -> None:
        pass

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"Running": False, "ExitCode": 0} if exec_id == "helper" else self.inspect

    def inspect_container(self, container: str) -> dict[str, Any]:
        return {"State": {"OOMKilled": False}}


class FakeSocketFile:
    def __init__(self, data: bytes, drop: bool) -> None:
        self.data, self.drop, self.raw = data, drop, object()

    def read1(self, size: int) -> bytes:
        piece, self.data = self.data[: min(size, 5)], self.data[min(size, 5) :]
        if not piece and self.drop:
            raise requests.exceptions.ConnectionError("connection reset by peer")
        return piece


class FakeResponse:
    def __init__(self, data: bytes, drop: bool) -> None:
        fp = FakeSocketFile(data, drop)
        self.raw = type("Raw", (), {"_fp": type("HTTP", (), {"fp": fp})()})()
        self.closed = False

    def close(self) -> None:
        self.closed = True


class StubClient:
    def __init__(self, api: StubAPI) -> None:
        self.api = api


def run_exec(api: StubAPI) -> tuple[Any, list[tuple[Stream, str]]]:
    from executor.engine.api import ExecRequest

    engine = DockerBackend(StubClient(api), RetryPolicy(attempts=1, first_wait=0))
    lines: list[tuple[Stream, str]] = []
    handle = engine.exec("cid", ExecRequest(("true",), "tok"))
    return handle.stream(lines.extend), lines


def test_lines_are_split_and_kept_apart() -> None:
    """Chunks split mid-line are reassembled; stdout and stderr stay separate."""
    result, lines = run_exec(
        StubAPI(
            [(b"one\ntw", None), (None, b"err\n"), (b"o\n", None)],
            drop=False,
            inspect={"Running": False, "ExitCode": 0},
        )
    )
    assert result.exit_code == 0 and result.error is None
    assert lines == [(Stream.STDOUT, "one"), (Stream.STDERR, "err"), (Stream.STDOUT, "two")]


def test_dropped_stream_with_no_exit_code_fails() -> None:
    """A dropped stream whose exec reports no exit code is an error, not success."""
    result, _ = run_exec(
        StubAPI([(b"partial\n", None)], drop=True, inspect={"Running": False, "ExitCode": None})
    )
    assert result.exit_code == -1
    assert "output stream dropped" in (result.error or "")


def test_dropped_stream_is_cross_checked_with_the_wrapper_record() -> None:
    """After a drop, an engine exit code that disagrees with the wrapper's record fails the task."""
    api = StubAPI([], drop=True, inspect={"Running": False, "ExitCode": 0}, recorded="3\n")
    result, _ = run_exec(api)
    assert result.exit_code == -1 and "recorded 3" in (result.error or "")
    assert api.helper_execs and api.helper_execs[0][2] == "rc"


def test_dropped_stream_confirmed_by_both_passes() -> None:
    """After a drop, engine and wrapper agreeing on the exit code gives that code."""
    result, _ = run_exec(
        StubAPI([], drop=True, inspect={"Running": False, "ExitCode": 5}, recorded="5")
    )
    assert result.exit_code == 5 and result.error is None


def test_transient_errors_are_retried_then_succeed() -> None:
    """A connection error is retried under the policy; the call then succeeds."""
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise requests.exceptions.ConnectionError("reset")
        return "ok"

    assert RetryPolicy(attempts=4, first_wait=0).call("ping", flaky) == "ok"
    assert len(calls) == 3


def test_permanent_errors_are_not_retried() -> None:
    """A 4xx API error is translated once, never retried."""
    calls = []

    def bad() -> None:
        calls.append(1)
        response = requests.Response()
        response.status_code = 409
        raise docker.errors.APIError("conflict", response=response)

    with pytest.raises(EngineError) as info:
        RetryPolicy(attempts=4, first_wait=0).call("create", bad)
    assert not isinstance(info.value, TransientEngineError)
    assert len(calls) == 1 and "create" in str(info.value)


def test_exhausted_retries_raise_transient_error() -> None:
    """A 500 that persists is raised as TransientEngineError after the last attempt."""

    def always() -> None:
        response = requests.Response()
        response.status_code = 500
        raise docker.errors.APIError("boom", response=response)

    with pytest.raises(TransientEngineError), translated("x"):
        RetryPolicy(attempts=2, first_wait=0).call("x", always)


def _fed(splitter: LineSplitter, chunks: Iterator[bytes], most: int = MAX_LINE) -> Iterator[str]:
    """Every piece the splitter hands out, checking it never holds more than ``most`` bytes."""
    for chunk in chunks:
        yield from splitter.feed(chunk)
        assert splitter.buffered <= most
    yield from splitter.finish()


def test_a_50_mb_line_without_newline_comes_out_in_bounded_pieces() -> None:
    """50 MB with no newline: pieces of at most 16 KiB, never more held, every byte kept."""
    chunk = bytes(range(32, 127)) * 690  # 65,550 bytes, so cuts fall anywhere in a chunk
    count = 50 * 1024 * 1024 // len(chunk)
    expected, got = hashlib.sha256(), hashlib.sha256()
    pieces = 0
    for piece in _fed(LineSplitter(), (chunk for _ in range(count))):
        data = piece.encode()
        assert len(data) <= MAX_LINE
        got.update(data)
        pieces += 1
    for _ in range(count):
        expected.update(chunk)
    assert got.digest() == expected.digest()
    assert pieces == -(-count * len(chunk) // MAX_LINE)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 4096])
def test_multibyte_characters_survive_cuts_and_chunk_boundaries(chunk_size: int) -> None:
    """Characters of 2 to 4 bytes split by a chunk boundary or a cut are never mangled."""
    text = "aé€😀" * 50 + "\n" + "😀é" * 30
    data = text.encode()
    chunks = (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))
    pieces = list(_fed(LineSplitter(limit=10), chunks, most=10))
    assert all(len(p.encode()) <= 10 for p in pieces)
    assert "\ufffd" not in "".join(pieces)
    assert "".join(pieces) == text.replace("\n", "")
    first, second = LineSplitter().feed(b"x" * (MAX_LINE - 1) + "😀".encode() + b"\n")
    assert (first, second) == ("x" * (MAX_LINE - 1), "😀")


def test_a_long_protocol_line_stays_whole_up_to_its_own_limit() -> None:
    """A 100 KiB ``::{...}::`` line is one line; one over 1 MiB is cut like any other."""
    line = '::{"outputs":{"a":"' + "x" * 100_000 + '"}}::'
    assert list(_fed(LineSplitter(), iter([line.encode() + b"\n"]))) == [line]
    huge = b"::{" + b"y" * (MAX_PROTOCOL_LINE + 10)
    chunks = (huge[i : i + 65536] for i in range(0, len(huge), 65536))
    pieces = list(_fed(LineSplitter(), chunks, most=MAX_PROTOCOL_LINE))
    assert all(len(p) <= MAX_LINE for p in pieces)
    assert "".join(pieces).encode() == huge


def test_a_long_line_reaches_the_sink_in_pieces_with_the_rest_intact() -> None:
    """Through an exec: a 40 KiB line is three pieces, the lines around it are untouched."""
    long = b"z" * (40 * 1024)
    result, lines = run_exec(
        StubAPI(
            [(b"before\r\n" + long[:1000], None), (long[1000:] + b"\nafter", None)],
            drop=False,
            inspect={"Running": False, "ExitCode": 0},
        )
    )
    assert result.exit_code == 0
    assert [len(text) for _, text in lines] == [6, MAX_LINE, MAX_LINE, 40 * 1024 - 2 * MAX_LINE, 5]
    assert lines[0] == (Stream.STDOUT, "before") and lines[-1] == (Stream.STDOUT, "after")


class ImagesAPI:
    """Answers pull and inspect_image from a set of local images, recording each pull."""

    def __init__(self, listed: list[dict[str, Any]] | None = None) -> None:
        self.local: dict[str, str] = {}
        self.listed = listed or []
        self.pulls: list[tuple[str, str | None]] = []

    def images(self) -> list[dict[str, Any]]:
        return self.listed

    def pull(
        self, repository: str, tag: str | None = None, auth_config: dict[str, str] | None = None
    ) -> None:
        self.pulls.append((repository, tag))
        self.local[f"{repository}:{tag}"] = "sha256:pulled"

    def inspect_image(self, ref: str) -> dict[str, str]:
        if "@" in ref:  # as an engine whose inspect ignores RepoDigests
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        if ref not in self.local:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        return {"Id": self.local[ref]}


@pytest.mark.parametrize(
    ("ref", "asked"),
    [
        ("127.0.0.1:5055/team/bb:1", ("127.0.0.1:5055/team/bb", "1")),
        ("127.0.0.1:5055/team/bb", ("127.0.0.1:5055/team/bb", "latest")),
        ("localhost:5000/bb:v2", ("localhost:5000/bb", "v2")),
        ("python:3.13-slim", ("python", "3.13-slim")),
    ],
)
def test_pull_splits_the_reference_at_the_tag_not_the_registry_port(
    ref: str, asked: tuple[str, str]
) -> None:
    """A registry on a port is kept in ``fromImage``; only the tag goes into ``tag``."""
    api = ImagesAPI()
    engine = DockerBackend(StubClient(api), RetryPolicy(attempts=1, first_wait=0))  # type: ignore[arg-type]
    assert engine.pull(ref) == "sha256:pulled"
    assert api.pulls == [asked]


def test_pull_of_an_invalid_reference_is_an_image_error_before_asking_the_engine() -> None:
    """An uppercase repository is refused with Docker's reason, and nothing is pulled."""
    api = ImagesAPI()
    engine = DockerBackend(StubClient(api), RetryPolicy(attempts=1, first_wait=0))  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="must be lowercase"):
        engine.pull("Team/BB:1")
    assert api.pulls == []


DIGEST = "sha256:" + "5e" * 32
LISTED = [
    {"Id": "sha256:other", "RepoDigests": None, "RepoTags": ["<none>:<none>"]},
    {"Id": "sha256:elsewhere", "RepoDigests": [f"127.0.0.1:5055/busybox@{DIGEST}"]},
    {"Id": "sha256:pinned", "RepoDigests": ["busybox@sha256:" + "0" * 64, f"busybox@{DIGEST}"]},
]


@pytest.mark.parametrize(
    ("ref", "found"),
    [
        (f"busybox@{DIGEST}", "sha256:pinned"),
        (f"docker.io/library/busybox:1.36@{DIGEST}", "sha256:pinned"),
        (f"127.0.0.1:5055/busybox@{DIGEST}", "sha256:elsewhere"),
        (f"alpine@{DIGEST}", None),
        ("busybox@sha256:" + "1" * 64, None),
    ],
)
def test_a_digest_reference_finds_the_image_whose_repo_digests_hold_it(
    ref: str, found: str | None
) -> None:
    """Both engine backends look a digest up in RepoDigests, matching repository and digest."""
    api = ImagesAPI(LISTED)
    engine = DockerBackend(StubClient(api), RetryPolicy(attempts=1, first_wait=0))  # type: ignore[arg-type]
    assert engine.image_id(ref) == found
    assert DockerImages(StubClient(api)).image_id(ref) == found


class RefusingAPI(ImagesAPI):
    """A registry that refuses the credentials, echoing them as a careless one might."""

    def __init__(self) -> None:
        super().__init__()
        self.auth_configs: list[dict[str, str] | None] = []

    def pull(
        self, repository: str, tag: str | None = None, auth_config: dict[str, str] | None = None
    ) -> None:
        self.auth_configs.append(auth_config)
        sent = (auth_config or {}).get("password", "")
        raise docker.errors.APIError(f"unauthorized: bad password {sent}")


def test_pull_sends_the_credentials_as_auth_config_and_masks_them_in_the_error() -> None:
    """Credentials go in Docker's auth fields; a refusal names the registry, never the password."""
    from executor.engine.api import RegistryAuth

    api = RefusingAPI()
    engine = DockerBackend(StubClient(api), RetryPolicy(attempts=1, first_wait=0))  # type: ignore[arg-type]
    auth = RegistryAuth("127.0.0.1:5055", "team", "pw-123456", identity_token="tok-987654")
    with pytest.raises(ImageError) as raised:
        engine.pull("127.0.0.1:5055/team/bb:1", auth)
    assert api.auth_configs == [
        {
            "serveraddress": "127.0.0.1:5055",
            "username": "team",
            "password": "pw-123456",
            "identitytoken": "tok-987654",
        }
    ]
    message = str(raised.value)
    assert "cannot pull image 127.0.0.1:5055/team/bb:1 from registry 127.0.0.1:5055" in message
    assert "pw-123456" not in message and "******" in message
    assert "pw-123456" not in repr(auth) and "tok-987654" not in repr(auth)


def test_the_container_limits_become_docker_host_config_fields() -> None:
    """memorySwap, the pids limit and device requests reach the host config as --gpus makes them."""
    from executor.engine.api import ContainerSpec, DeviceRequest
    from executor.engine.docker.containers import limits as host_limits

    spec = ContainerSpec(
        image="i",
        volume="v",
        workspace="/workspace",
        labels={},
        memory_swap="1g",
        pids_limit=64,
        device_requests=(DeviceRequest("nvidia", -1, (), (("gpu",),), (("k", "v"),)),),
    )
    limits = host_limits(spec)
    assert limits["memswap_limit"] == 1024**3
    assert limits["pids_limit"] == 64
    assert limits["device_requests"] == [
        {
            "Driver": "nvidia",
            "Count": -1,
            "DeviceIDs": [],
            "Capabilities": [["gpu"]],
            "Options": {"k": "v"},
        }
    ]
    assert host_limits(ContainerSpec("i", "v", "/w", {}, memory_swap="-1"))["memswap_limit"] == -1
    assert host_limits(ContainerSpec("i", "v", "/w", {})) == {}


def test_host_directories_are_mounted_only_with_an_engine_beside_us(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root on the local socket the engine may mount this process's directories only when
    it runs beside us (names our host, its data directory is here); an engine seen through a
    mounted socket from a container (a compose worker) names another host and keeps its data
    elsewhere: its paths are not ours."""
    import socket
    from types import SimpleNamespace

    from executor.engine.docker import backend
    from executor.engine.docker.client import LOCAL_BASE_URL

    monkeypatch.setattr(backend.os, "geteuid", lambda: 0)

    def engine_with(name: str, root: str, base_url: str = LOCAL_BASE_URL) -> DockerBackend:
        info = {"Name": name, "DockerRootDir": root}
        api = SimpleNamespace(base_url=base_url, info=lambda: info)
        return DockerBackend(SimpleNamespace(api=api))

    here = socket.gethostname()
    assert engine_with(here, str(tmp_path)).capabilities.host_directory
    assert not engine_with("the-docker-host", str(tmp_path)).capabilities.host_directory
    assert not engine_with(here, str(tmp_path / "not-here")).capabilities.host_directory
    remote = engine_with(here, str(tmp_path), "http://10.0.0.2:2375").capabilities
    assert not remote.host_directory and not remote.host_volume_path
