"""The one tar writer: archives built piece by piece, so memory stays flat.

:func:`tar_stream` turns :class:`Entry` values into the bytes of one tar archive (PAX headers,
UTF-8 names), yielded in chunks: a header, then the file's data read in 1 MiB pieces. What goes
into a container (seeded workspaces, the exec wrapper, task files), what a task archives and what
the cache keeps are all written by it.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from executor.paths import safe_relative

BLOCK = 512
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One member of an archive going into a container.

    Attributes:
        name: relative posix path inside the destination directory.
        kind: ``file``, ``dir`` or ``symlink``.
        size: bytes of a file's data.
        mode: permission bits.
        mtime: modification time (seconds since the epoch).
        data: the whole content, for small inline files.
        source: a host file whose bytes are read when the entry is written (never held whole).
        opener: opens the content when the entry is written (e.g. an artifact).
        linkname: a symlink's target (kept as is: it is resolved inside the container).
    """

    name: str
    kind: str = "file"
    size: int = 0
    mode: int = 0o644
    mtime: float = field(default_factory=time.time)
    data: bytes | None = None
    source: Path | None = None
    opener: Callable[[], IO[bytes]] | None = None
    linkname: str = ""

    @classmethod
    def inline(cls, name: str, data: bytes, mode: int = 0o644) -> Entry:
        """A small file whose content is already in memory."""
        return cls(str(safe_relative(name)), "file", len(data), mode, data=data)

    @classmethod
    def host_file(cls, name: str, path: Path, st: os.stat_result | None = None) -> Entry:
        """A regular host file streamed from disk when the archive is written."""
        st = st or path.lstat()
        return cls(
            str(safe_relative(name)),
            "file",
            st.st_size,
            stat.S_IMODE(st.st_mode),
            st.st_mtime,
            source=path,
        )

    def tarinfo(self) -> tarfile.TarInfo:
        """The tar header of this entry."""
        info = tarfile.TarInfo(self.name)
        info.mode, info.mtime = self.mode, int(self.mtime)
        if self.kind == "dir":
            info.type = tarfile.DIRTYPE
        elif self.kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, self.linkname
        else:
            info.size = self.size
        return info


def _open_entry(entry: Entry) -> IO[bytes]:
    if entry.data is not None:
        return io.BytesIO(entry.data)
    if entry.opener is not None:
        return entry.opener()
    assert entry.source is not None
    # O_NOFOLLOW: a file swapped for a link since it was listed is refused, not followed.
    fd = os.open(entry.source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def tar_stream(entries: Iterable[Entry]) -> Iterator[bytes]:
    """The bytes of one tar archive of ``entries``, in chunks of at most 1 MiB.

    A file that turns out shorter than its recorded size is padded with zeros and one that
    grew is cut, so the archive stays well-formed whatever happens on disk meanwhile.
    """
    for entry in entries:
        yield entry.tarinfo().tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if entry.kind != "file":
            continue
        remaining = entry.size
        with _open_entry(entry) as fh:
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        if remaining > 0:
            yield bytes(remaining)
        if entry.size % BLOCK:
            yield bytes(BLOCK - entry.size % BLOCK)
    yield bytes(2 * BLOCK)


def tree_entries(root: Path, prefix: str = "") -> Iterator[Entry]:
    """Every directory, regular file and symlink under ``root``, links never followed.

    Args:
        root: a host directory.
        prefix: a relative path the names are placed under (``""`` for none).
    """
    base = PurePosixPath(prefix) if prefix else None
    if base is not None:
        for depth in range(1, len(base.parts) + 1):
            yield Entry(str(PurePosixPath(*base.parts[:depth])), "dir", mode=0o755)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root)
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath) / name
            rel = PurePosixPath(*rel_dir.parts, name)
            if base is not None:
                rel = base / rel
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                yield Entry(str(rel), "dir", mode=stat.S_IMODE(st.st_mode), mtime=st.st_mtime)
            elif stat.S_ISLNK(st.st_mode):
                yield Entry(
                    str(rel),
                    "symlink",
                    mode=0o777,
                    mtime=st.st_mtime,
                    linkname=str(path.readlink()),
                )
            elif stat.S_ISREG(st.st_mode):
                yield Entry.host_file(str(rel), path, st)


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """The whole archive of a few small ``entries`` at once."""
    return b"".join(tar_stream(entries))
