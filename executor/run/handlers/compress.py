"""``plugin-compress`` on the host: zip and tar archives, gzip/bzip2/xz/zstd/deflate files.

Everything streams in 1 MiB chunks. An archive member whose path is absolute, climbs with
``..``, or is a link or a device is refused before anything is stored, and the unpacked total
is capped (``EXECUTOR_MAX_UNPACKED``, default 10 GiB) against archive bombs.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO, Any, cast

from executor.errors import ExecutorError
from executor.flow.tasks_compress import (
    ArchiveCompressTask,
    ArchiveDecompressTask,
    FileCompressTask,
    FileDecompressTask,
)
from executor.model import Level, State
from executor.paths import safe_relative
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.bounds import PLUGINS_EXTRA, scratch
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.tar_writer import Entry, tar_stream

CHUNK = 1024 * 1024


class Budget:
    """Bytes an unpacking may still write (``Settings.max_unpacked_bytes`` at first)."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def spend(self, size: int, label: str) -> None:
        self.left -= size
        if self.left < 0:
            raise TaskInputError(f"{label}: more than {self.limit} bytes unpacked; refused")


_EXTENSIONS = {"GZIP": ".gz", "BZIP2": ".bz2", "XZ": ".xz", "LZMA": ".lzma", "ZSTD": ".zst"}
_EXTENSIONS["DEFLATE"] = ".deflate"


def _open(job: HostJob, uri: str) -> IO[bytes]:
    try:
        return job.artifacts().open(uri)
    except ExecutorError as exc:
        raise TaskInputError(exc.message) from None


def _name(job: HostJob, value: str | None, allowed: tuple[str, ...], prop: str) -> str:
    name = job.text(value).strip().upper()
    if name not in allowed:
        raise TaskInputError(
            f"'{prop}' {name} is not supported here; use one of {', '.join(allowed)}"
        )
    return name


_CODECS = ("GZIP", "BZIP2", "XZ", "LZMA", "ZSTD", "DEFLATE")


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise TaskInputError(f"ZSTD needs the zstandard package: {PLUGINS_EXTRA}") from None
    return zstandard


def compressing(codec: str, out: IO[bytes]) -> IO[bytes]:
    """A writable stream compressing into ``out`` with ``codec``."""
    if codec == "GZIP":
        return cast(IO[bytes], gzip.GzipFile(fileobj=out, mode="wb"))
    if codec == "BZIP2":
        return bz2.BZ2File(out, "wb")
    if codec in ("XZ", "LZMA"):
        fmt = lzma.FORMAT_XZ if codec == "XZ" else lzma.FORMAT_ALONE
        return lzma.LZMAFile(out, "wb", format=fmt)
    if codec == "ZSTD":
        return _zstd().ZstdCompressor().stream_writer(out, closefd=False)  # type: ignore[no-any-return]
    return cast(IO[bytes], _ZlibWriter(out))


def decompressing(codec: str, source: IO[bytes]) -> IO[bytes]:
    """A readable stream of ``source`` decompressed with ``codec``."""
    if codec == "GZIP":
        return cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
    if codec == "BZIP2":
        return bz2.BZ2File(source, "rb")
    if codec in ("XZ", "LZMA"):
        return lzma.LZMAFile(source, "rb")
    if codec == "ZSTD":
        return _zstd().ZstdDecompressor().stream_reader(source)  # type: ignore[no-any-return]
    return cast(IO[bytes], _ZlibReader(source))


class _ZlibWriter(io.RawIOBase):
    """DEFLATE as commons-compress writes it: a zlib stream."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.z = out, zlib.compressobj()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.out.write(self.z.compress(bytes(data)))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.out.write(self.z.flush())
        super().close()


class _ZlibReader(io.RawIOBase):
    def __init__(self, source: IO[bytes]) -> None:
        self.source, self.z = source, zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self.z.unconsumed_tail:
                data = self.z.decompress(self.z.unconsumed_tail, len(buffer))
            else:
                raw = self.source.read(CHUNK)
                if not raw:
                    data = self.z.flush()
                    buffer[: len(data)] = data
                    return len(data)
                data = self.z.decompress(raw, len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)


def _produce(job: HostJob, name: str, fill: Any) -> str:
    """Run ``fill(out)`` writing a file of the store through a temporary local file.

    Archives need a seekable output (zip's central directory); a scratch file gives that, and
    the store still receives it through its own temporary-then-rename write.
    """
    with scratch(job) as workdir:
        local = workdir / "out"
        with local.open("wb") as out:
            fill(out)
        prefix = job.store_prefix()
        with local.open("rb") as fh:
            job.artifacts().write(prefix, name, fh)
        return job.artifacts().uri(prefix, name)


def _copy(source: IO[bytes], out: IO[bytes], budget: Budget, label: str) -> None:
    while block := source.read(CHUNK):
        budget.spend(len(block), label)
        out.write(block)


def _members(job: HostJob, task: ArchiveCompressTask) -> dict[str, str]:
    rendered = job.mapping(task.from_, "from")
    if not rendered:
        raise TaskInputError("'from' must be a map of archive path to file URI")
    members = {}
    for path, uri in rendered.items():
        try:
            members[str(safe_relative(str(path)))] = str(uri).strip()
        except ExecutorError as exc:
            raise TaskInputError(f"'from': {exc.message}") from None
    return members


def _entry(path: str, fh: IO[bytes]) -> Entry:
    size = fh.seek(0, 2)
    fh.seek(0)
    return Entry(path, size=size, opener=lambda: fh)


def _archive_compress(task: ArchiveCompressTask, job: HostJob) -> AttemptResult:
    algorithm = _name(job, task.algorithm, ("ZIP", "JAR", "TAR"), "algorithm")
    codec = _name(job, task.compression, _CODECS, "compression") if task.compression else None
    members = _members(job, task)
    sources = {path: _open(job, uri) for path, uri in members.items()}  # all exist first

    def fill(out: IO[bytes]) -> None:
        stream = compressing(codec, out) if codec else out
        try:
            if algorithm == "TAR":
                for chunk in tar_stream(_entry(path, fh) for path, fh in sources.items()):
                    stream.write(chunk)
            else:
                with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
                    for path, fh in sources.items():
                        with archive.open(path, "w", force_zip64=True) as member:
                            _copy(fh, member, Budget(2**62), path)
        finally:
            if stream is not out:
                stream.close()

    suffix = {"TAR": ".tar", "ZIP": ".zip", "JAR": ".jar"}[algorithm] + (
        _EXTENSIONS[codec] if codec else ""
    )
    try:
        uri = _produce(job, f"{task.id}{suffix}", fill)
    finally:
        for fh in sources.values():
            fh.close()
    job.log(Level.INFO, f"{len(members)} file(s) archived")
    return AttemptResult(State.SUCCESS, outputs={"uri": uri})


def _archive_decompress(task: ArchiveDecompressTask, job: HostJob) -> AttemptResult:
    algorithm = _name(job, task.algorithm, ("ZIP", "JAR", "TAR"), "algorithm")
    codec = _name(job, task.compression, _CODECS, "compression") if task.compression else None
    source = job.text(task.from_).strip()
    budget = Budget(job.ctx.settings.max_unpacked_bytes)
    files: dict[str, str] = {}
    prefix = job.store_prefix()
    artifacts = job.artifacts()
    with scratch(job) as workdir, _open(job, source) as raw:
        stream = decompressing(codec, raw) if codec else raw
        try:
            for path, member in _entries(algorithm, stream, workdir, source):
                with contextlib.closing(member):
                    counted = _Counted(member, budget, path)
                    artifacts.write(prefix / "files", path, counted)
                files[path] = artifacts.uri(prefix / "files", path)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, lzma.LZMAError) as exc:
            raise TaskInputError(f"{source} is not a {algorithm} archive: {exc}") from None
    job.log(Level.INFO, f"{len(files)} file(s) unpacked")
    return AttemptResult(State.SUCCESS, outputs={"files": files})


class _Counted(io.RawIOBase):
    def __init__(self, source: IO[bytes], budget: Budget, label: str) -> None:
        self.source, self.budget, self.label = source, budget, label

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        self.budget.spend(len(data), self.label)
        buffer[: len(data)] = data
        return len(data)


def _safe(path: str, source: str) -> str:
    try:
        return str(safe_relative(path.rstrip("/")))
    except ExecutorError:
        raise TaskInputError(f"{source}: member {path!r} would land outside; refused") from None


def _entries(
    algorithm: str, stream: IO[bytes], workdir: Any, source: str
) -> Iterator[tuple[str, IO[bytes]]]:
    if algorithm == "TAR":
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                if info.isdir():
                    continue
                path = _safe(info.name, source)
                if not info.isfile():
                    raise TaskInputError(
                        f"{source}: member {info.name!r} is a link or device; refused"
                    )
                member = tar.extractfile(info)
                if member is not None:
                    yield path, member
        return
    # A zip's directory is at its end: spool a non-seekable stream to the scratch directory.
    seekable = stream
    if not getattr(stream, "seekable", lambda: False)():
        spooled = workdir / "archive.zip"
        with spooled.open("wb") as out:
            while block := stream.read(CHUNK):
                out.write(block)
        seekable = spooled.open("rb")
    with zipfile.ZipFile(seekable) as archive:
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            path = _safe(entry.filename, source)
            if (entry.external_attr >> 16) & 0o170000 == 0o120000:
                raise TaskInputError(f"{source}: member {entry.filename!r} is a link; refused")
            yield path, archive.open(entry)


def _file_compress(task: FileCompressTask, job: HostJob) -> AttemptResult:
    codec = _name(job, task.compression, _CODECS, "compression")
    source = job.text(task.from_).strip()
    name = PurePosixPath(source).name + _EXTENSIONS[codec]
    with _open(job, source) as fh:

        def fill(out: IO[bytes]) -> None:
            with contextlib.closing(compressing(codec, out)) as stream:
                _copy(fh, stream, Budget(2**62), source)

        uri = _produce(job, name, fill)
    return AttemptResult(State.SUCCESS, outputs={"uri": uri})


def _file_decompress(task: FileDecompressTask, job: HostJob) -> AttemptResult:
    codec = _name(job, task.compression, _CODECS, "compression")
    source = job.text(task.from_).strip()
    base = PurePosixPath(source).name
    name = base.removesuffix(_EXTENSIONS[codec]) if base.endswith(_EXTENSIONS[codec]) else base
    prefix = job.store_prefix()
    with _open(job, source) as fh:
        stream = decompressing(codec, fh)
        try:
            job.artifacts().write(
                prefix, name, _Counted(stream, Budget(job.ctx.settings.max_unpacked_bytes), source)
            )
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise TaskInputError(f"{source} is not {codec} data: {exc}") from None
    return AttemptResult(State.SUCCESS, outputs={"uri": job.artifacts().uri(prefix, name)})


archive_compress_attempt = host_attempt(_archive_compress)
archive_decompress_attempt = host_attempt(_archive_decompress)
file_compress_attempt = host_attempt(_file_compress)
file_decompress_attempt = host_attempt(_file_decompress)

COMPRESS_ATTEMPTS = {
    ArchiveCompressTask: archive_compress_attempt,
    ArchiveDecompressTask: archive_decompress_attempt,
    FileCompressTask: file_compress_attempt,
    FileDecompressTask: file_decompress_attempt,
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in COMPRESS_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
