"""Harvesting through the engine's archive stream (a remote engine, or a volume not readable here).

The stream is asked as HTTP/1.0 and read in blocks into one reused buffer: these check, on a
real engine, that every byte comes out as the SDK's own request gives it, whatever the buffer
size, and that hostile members are handled there as on the host path.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from executor.engine import labels
from executor.engine.api import ContainerOptions, ContainerSpec, WorkdirSpec
from executor.engine.containers import ContainerWorkdir
from executor.engine.docker.backend import DockerBackend
from executor.engine.docker.client import connect
from executor.errors import EngineError, WorkspaceError
from executor.services import local_services
from executor.settings import Settings
from executor.workspace.container import WorkspaceReader
from executor.workspace.service import WorkspaceService
from executor.workspace.tarstream import write_members

pytestmark = pytest.mark.integration

IMAGE = "executor/busybox:latest"
WS = "/workspace"
# Files crossing the 1 MiB buffer at odd offsets, many small members, names a shell or a
# line-based listing would mangle (newline, not UTF-8), links out, a hard link.
MAKE = r"""
set -e
cd /workspace
head -c 3000001 /dev/urandom > big.bin
mkdir -p "many files"
i=1
while [ $i -le 300 ]; do head -c $((i * 37)) /dev/urandom > "many files/f$i"; i=$((i + 1)); done
printf 'one\n' > "$(printf 'new\nline.txt')"
printf 'two\n' > "$(printf 'caf\351.txt')"
ln -s /etc/passwd passwd
ln -s /etc etc
ln big.bin hard.bin
"""


@dataclass
class Box:
    engine: DockerBackend
    container: str
    volume: str


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    engine = DockerBackend(connect(os.environ.get("DOCKER_HOST")))
    if engine.image_id(IMAGE) is None:
        pytest.fail(f"{IMAGE} is missing: run `make images`")
    owned = labels.ownership(f"test-harvest-stream-{uuid.uuid4().hex[:8]}")
    volume = engine.create_volume(owned)
    try:
        container = engine.start_container(ContainerSpec(IMAGE, volume, WS, owned))
        try:
            code, out = engine.run_root(container, ["/bin/sh", "-c", MAKE])
            assert code == 0, out
            yield Box(engine, container, volume)
        finally:
            engine.remove_container(container)
    finally:
        engine.remove_volume(volume)


def sdk_archive(box: Box, path: str) -> bytes:
    """The archive as the SDK's own (HTTP/1.1, chunked) request gives it."""
    stream, _ = box.engine._api.get_archive(box.container, path, chunk_size=None)
    return b"".join(stream)


@pytest.mark.parametrize("size", [None, 511, 4099, 1 << 20])
def test_archive_bytes_equal_the_sdks_whatever_the_buffer(box: Box, size: int | None) -> None:
    """Fresh chunks or views of one reused buffer: the same bytes as the SDK's request."""
    buffer = bytearray(size) if size else None
    ours = b"".join(bytes(c) for c in box.engine.get_archive(box.container, WS, buffer))
    assert hashlib.sha256(ours).hexdigest() == hashlib.sha256(sdk_archive(box, WS)).hexdigest()


def test_stream_harvest_writes_exact_files_and_refuses_links(box: Box, tmp_path: Path) -> None:
    """The stream path (no host directory): every regular file byte-exact under its own name,
    links refused, the hard link a copy, nothing outside the destination."""
    workdir = ContainerWorkdir(box.engine, WorkdirSpec({}, WS, lambda: ContainerOptions(IMAGE)))
    workdir.volume = None  # as for a remote engine: the archive stream, not the volume's dir
    assert workdir.host_path() is None
    dest = tmp_path / "out"
    done = write_members(WorkspaceReader(workdir, box.container).stream(["."]), dest)

    expected: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(sdk_archive(box, f"{WS}/.")), mode="r:") as tar:
        for info in tar:
            name = info.name.removeprefix("./")
            data = tar.extractfile(info) if info.isfile() else None
            if data is not None:
                expected[name] = hashlib.sha256(data.read()).hexdigest()
    expected["hard.bin"] = expected["big.bin"]  # a hard link comes out as a copy
    got = {
        str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in dest.rglob("*")
        if p.is_file()
    }
    assert len(expected) == 304
    assert got == expected
    assert set(done.written) == set(expected)
    assert (dest / "new\nline.txt").read_bytes() == b"one\n"
    assert (dest / os.fsdecode(b"caf\xe9.txt")).read_bytes() == b"two\n"
    _, out = box.engine.run_root(box.container, ["sha256sum", f"{WS}/big.bin"])
    assert got["big.bin"] == out.split()[0]
    assert set(done.refused) == {"passwd", "etc"}
    for path in dest.rglob("*"):
        assert not path.is_symlink()
        assert stat.S_ISREG(path.lstat().st_mode) or path.is_dir()


def _sockets() -> int:
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += str(fd.readlink()).startswith("socket:")
        except OSError:
            continue
    return count


def test_closing_the_stream_midway_closes_its_connection(box: Box) -> None:
    """A harvest given up (kill, full disk) closes the engine's connection at once."""
    box.engine.image_id(IMAGE)  # the SDK's pooled connection is open before counting
    before = _sockets()
    chunks = box.engine.get_archive(box.container, f"{WS}/big.bin", bytearray(4096))
    assert next(chunks)
    assert _sockets() == before + 1
    chunks.close()
    assert _sockets() == before


def test_a_missing_path_is_the_engines_error(box: Box) -> None:
    """Not answered 200: the SDK's request is made, and its error named."""
    with pytest.raises(EngineError, match="Could not find the file"):
        list(box.engine.get_archive(box.container, f"{WS}/nope", bytearray(4096)))


@pytest.fixture
def small_dest(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (smaller than big.bin), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    dest = tmp_path / "small"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(dest)], check=True)
    try:
        yield dest
    finally:
        subprocess.run(["umount", str(dest)], check=True)


def test_a_full_disk_fails_the_stream_harvest_leaving_nothing(box: Box, small_dest: Path) -> None:
    """No space left: the error is raised, no partial file stays, the connection is closed."""
    workdir = ContainerWorkdir(box.engine, WorkdirSpec({}, WS, lambda: ContainerOptions(IMAGE)))
    workdir.volume = None
    box.engine.image_id(IMAGE)  # the SDK's pooled connection is open before counting
    before = _sockets()
    with pytest.raises(OSError, match="No space left"):
        write_members(WorkspaceReader(workdir, box.container).stream(["big.bin"]), small_dest)
    assert [p for p in small_dest.rglob("*")] == []
    assert _sockets() == before


def test_a_stream_cut_between_members_fails_the_harvest_and_keeps_nothing(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body has no framing: a connection cut right after a member (a dead engine) must
    not pass for a smaller workspace. The harvest fails naming it, and nothing stays."""
    whole = sdk_archive(box, f"{WS}/many files")
    with tarfile.open(fileobj=io.BytesIO(whole), mode="r:") as tar:
        members = tar.getmembers()
    cut = members[len(members) // 2].offset  # the start of a header: between two members
    monkeypatch.setattr(box.engine, "get_archive", lambda *_: iter([whole[:cut]]))
    settings = Settings.from_env({"EXECUTOR_HOME": str(tmp_path / "home")})
    stores = local_services(settings)
    service = WorkspaceService(settings, stores.host, stores.cache)
    workdir = ContainerWorkdir(box.engine, WorkdirSpec({}, WS, lambda: ContainerOptions(IMAGE)))
    workdir.volume = None
    reader = WorkspaceReader(workdir, box.container)
    wanted = {f"many files/f{i}" for i in range(1, 301)}
    with pytest.raises(WorkspaceError, match="archive ended early"):
        service._collect(reader, ["many files"], PurePosixPath("run"), wanted)
    assert [p for p in service.artifacts.root.rglob("*") if not p.is_dir()] == []
