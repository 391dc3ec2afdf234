"""Tar streams in both directions, built and read piece by piece so memory stays flat.

Into a container: ``executor.tar_writer.tar_stream`` makes the bytes of one archive, yielded in
chunks, and :class:`ChunkReader` makes that iterator a file object for ``Workdir.put_tar``
(:class:`Prefetch` reads ahead on a thread of its own).

Out of a container (onto the host): :func:`member_path` is the one check every member name goes
through before anything is written, and :func:`extract_files` writes only regular files under a
target directory, never following or creating a link.
"""

from __future__ import annotations

import io
import queue
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from executor.errors import UnsafePathError
from executor.paths import unsafe_reason
from executor.store.files.artifacts import write_file
from executor.tar_writer import CHUNK


class Prefetch:
    """Iterates ``chunks`` on a helper thread, at most ``depth`` chunks ahead.

    Reading the engine's socket and writing the disk (or reading the disk and writing the
    socket) then overlap instead of taking turns; the bounded queue keeps memory flat.
    """

    _END = object()

    def __init__(self, chunks: Iterable[bytes], depth: int = 8) -> None:
        self._source = iter(chunks)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._pump, name="tar-prefetch", daemon=True)
        self._thread.start()

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            for chunk in self._source:
                if not self._offer(chunk):
                    break
        except BaseException as exc:  # re-raised on the consumer's thread
            self._offer(exc)
        else:
            self._offer(self._END)
        finally:
            closer = getattr(self._source, "close", None)
            if closer is not None:
                closer()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is self._END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        assert isinstance(item, bytes | bytearray | memoryview)
        return item  # type: ignore[return-value]  # a bytearray is handed on uncopied

    def close(self) -> None:
        """Stop the helper thread (the source is closed on it)."""
        self._stop.set()
        self._thread.join(timeout=30)


class ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks.

    ``Workdir.put_tar`` reads it in blocks (HTTP chunked upload), and ``tarfile`` in stream
    mode (``r|``) reads ``get_archive``'s chunks through it; neither ever holds the whole.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece = self.view(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def view(self, limit: int) -> memoryview:
        """Up to ``limit`` next bytes without copying them; empty at the end.

        The view is only valid until the next read: its chunk may be handed back for reuse.
        """
        while not self._buf:
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                return memoryview(b"")
        piece = self._buf[:limit]
        self._buf = self._buf[limit:]
        return piece

    def close(self) -> None:
        closer = getattr(self._chunks, "close", None)
        if closer is not None:
            closer()
        super().close()


def member_path(name: str) -> PurePosixPath | None:
    """A tar member's name as a safe relative path; ``None`` for the archive's own root.

    Raises:
        UnsafePathError: the name is absolute or climbs out with ``..`` (tar-slip).
    """
    trimmed = name
    while trimmed.startswith("./"):
        trimmed = trimmed[2:]
    parts = [p for p in trimmed.split("/") if p not in ("", ".")]
    if not parts and not trimmed.startswith("/"):
        return None
    reason = unsafe_reason(trimmed, root="its directory")
    if reason is not None:
        raise UnsafePathError(f"archive member {name!r} {reason}")
    return PurePosixPath(*parts)


@dataclass
class Extracted:
    """What :func:`extract_files` did with an archive."""

    written: dict[str, Path] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


class _Cursor:
    """Reads an archive forward, counting bytes; hands out views when the stream can."""

    def __init__(self, stream: IO[bytes] | io.RawIOBase) -> None:
        self._stream = stream
        self._view: Callable[[int], memoryview] | None = getattr(stream, "view", None)
        self.pos = 0

    def view(self, limit: int) -> memoryview:
        piece = self._view(limit) if self._view else memoryview(self._stream.read(limit) or b"")
        self.pos += len(piece)
        return piece

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        while size > 0:
            piece = self.view(size)
            if not piece:
                break
            parts.append(bytes(piece))
            size -= len(piece)
        return b"".join(parts)

    def tell(self) -> int:
        return self.pos

    def skip_to(self, offset: int) -> None:
        while self.pos < offset:
            if not self.view(min(CHUNK, offset - self.pos)):
                raise tarfile.ReadError("unexpected end of data")


class _HeaderSource:
    """The part of a ``TarFile`` that ``TarInfo.fromtarfile`` reads headers through."""

    def __init__(self, cursor: _Cursor) -> None:
        self.fileobj = cursor
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}
        self.offset = 0  # where the next header starts, set by fromtarfile


class MemberData(io.RawIOBase):
    """A member's bytes, read straight off the archive; valid until the next member."""

    def __init__(self, cursor: _Cursor, size: int) -> None:
        super().__init__()
        self._cursor = cursor
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece = self._piece(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def read(self, size: int | None = -1) -> bytes:
        """Exactly ``size`` bytes (all that is left when fewer or ``size`` < 0), across chunks.

        ``tarfile.addfile`` (the cache) takes a short read for a truncated member.
        """
        want = self._left if size is None or size < 0 else min(size, self._left)
        parts: list[bytes] = []
        while want > 0:
            piece = self._piece(want)
            parts.append(bytes(piece))
            want -= len(piece)
        return b"".join(parts)

    def chunks(self) -> Iterator[memoryview]:
        """The rest of the data as views of the archive's own chunks (no copy)."""
        while self._left > 0:
            yield self._piece(CHUNK)

    def _piece(self, limit: int) -> memoryview:
        if self._left <= 0:
            return memoryview(b"")
        piece = self._cursor.view(min(limit, self._left))
        if not piece:
            raise tarfile.ReadError("unexpected end of data")
        self._left -= len(piece)
        return piece


def _next_header(source: _HeaderSource, require_end: bool) -> tarfile.TarInfo | None:
    """The next member's header, or ``None`` at the end (as ``TarFile.next`` decides it).

    With ``require_end`` only the end-of-archive block ends it: a stream that just stops
    (between members, or inside a header) is an error, not a shorter archive.
    """
    first = source.offset == 0
    try:
        return tarfile.TarInfo.fromtarfile(source)  # type: ignore[arg-type]
    except tarfile.HeaderError as exc:  # its subclasses are not in typeshed: told by name
        kind = type(exc).__name__
        if kind == "SubsequentHeaderError":
            raise tarfile.ReadError(str(exc)) from None
        if require_end and kind in ("EmptyHeaderError", "TruncatedHeaderError"):
            raise tarfile.ReadError("the archive was cut short (no end-of-archive block)") from None
        if first and kind != "EOFHeaderError":
            raise tarfile.ReadError(
                "empty file" if kind == "EmptyHeaderError" else str(exc)
            ) from None
        return None


def tar_members(
    stream: IO[bytes] | io.RawIOBase, *, require_end: bool = False
) -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes] | None]]:
    """The members of a tar stream as (checked relative path, header, data or None).

    Headers are parsed by ``tarfile`` itself; a file's data is read straight off ``stream``
    (views of its chunks when it offers ``view``, as :class:`ChunkReader` does), not through
    ``tarfile``'s stream buffer, which copied every byte several times.

    Args:
        stream: the archive.
        require_end: the stream carries no framing of its own (the engine's unframed body),
            so ending anywhere but at the end-of-archive block is an error.

    Raises:
        UnsafePathError: a member's name or hard-link target escapes (tar-slip).
        tarfile.ReadError: the stream is not a tar archive or ends inside a member.
    """
    cursor = _Cursor(stream)
    source = _HeaderSource(cursor)
    while True:
        cursor.skip_to(source.offset)
        info = _next_header(source, require_end)
        if info is None:
            return
        rel = member_path(info.name)
        if rel is None:
            continue
        if info.islnk():
            target = member_path(info.linkname)
            if target is None:
                raise UnsafePathError(f"hard link {info.name!r} has no target")
            info.linkname = str(target)
        data = MemberData(cursor, info.size) if info.isfile() else None
        yield str(rel), info, cast(IO[bytes], data)


def write_members(
    members: Iterable[tuple[str, tarfile.TarInfo, IO[bytes] | None]],
    dest: Path,
    accept: Callable[[str], bool] = lambda _: True,
    done: Extracted | None = None,
) -> Extracted:
    """Write the regular files among ``members`` under ``dest``; links and devices are refused.

    Every name is checked again before anything is written; a hard link is honoured only as a
    copy of a file these same members already wrote.

    Args:
        members: (relative path, header, data) as :func:`tar_members` gives them.
        dest: the directory nothing may be written outside of.
        accept: which relative paths to keep; the others are skipped unread.
        done: where to record what is written, so a caller sees it after a failure too.

    Raises:
        UnsafePathError: a name or link target escapes ``dest``.
    """
    done = Extracted() if done is None else done
    dest.mkdir(parents=True, exist_ok=True)
    for name, info, data in members:
        rel = member_path(name)
        if rel is None or info.isdir() or not accept(str(rel)):
            continue
        if info.isfile() and data is not None:
            done.written[str(rel)] = write_file(dest, rel, data)
        elif info.islnk():
            target = member_path(info.linkname)
            source = done.written.get(str(target)) if target is not None else None
            if source is None:
                done.refused[str(rel)] = f"a hard link to {info.linkname}"
                continue
            with source.open("rb") as fh:
                done.written[str(rel)] = write_file(dest, rel, fh)
        elif info.issym():
            done.refused[str(rel)] = f"a symbolic link to {info.linkname}"
        else:
            done.refused[str(rel)] = "not a regular file"
    return done


def extract_files(
    stream: IO[bytes], dest: Path, accept: Callable[[str], bool] = lambda _: True
) -> Extracted:
    """Write the regular files of one tar stream under ``dest`` (see :func:`write_members`).

    Raises:
        UnsafePathError: a member's name or link target escapes ``dest`` (tar-slip).
    """
    return write_members(tar_members(stream), dest, accept)
