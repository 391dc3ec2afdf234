"""Reading a workspace volume out of its container at a cost that scales with what is chosen.

One root exec lists the workspace (``find``, present in busybox, Debian and Python images);
the globs are matched on the host; then the chosen files come out through the fewest archive
streams: a directory whose every listed file is chosen comes out whole, other files one by one.
An image without ``find`` falls back to one stream of the whole workspace, filtered on the host.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from executor.engine.api import Workdir
from executor.errors import UnsafePathError
from executor.tar_writer import CHUNK
from executor.workspace.tarstream import (
    ChunkReader,
    member_path,
    tar_members,
)

LIST_SCRIPT = r"""
cd "$1" || exit 3
command -v find >/dev/null 2>&1 || exit 127
find . -mindepth 1 -type f -print0 2>/dev/null
printf '\0'
find . -mindepth 1 -type l -print0 2>/dev/null
printf '\0END\0'
"""

Member = tuple[str, tarfile.TarInfo, IO[bytes] | None]


@dataclass
class Listing:
    """The regular files and symbolic links of a workspace, as relative paths."""

    files: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    by_find: bool = True

    @property
    def paths(self) -> set[str]:
        """Files and links together."""
        return self.files | set(self.links)


def parse_listing(output: str) -> Listing | None:
    """The listing printed by :data:`LIST_SCRIPT`, or ``None`` when it is incomplete."""
    parts = output.split("\0")
    if len(parts) < 3 or parts[-2] != "END":
        return None
    body = parts[:-2]
    try:
        cut = body.index("")
    except ValueError:
        return None

    def rel(name: str) -> str | None:
        try:
            path = member_path(name)
        except UnsafePathError:
            return None
        return str(path) if path is not None else None

    files = {r for r in map(rel, body[:cut]) if r}
    links = {r: "" for r in map(rel, body[cut + 1 :]) if r}
    return Listing(files, links)


def cover(chosen: Iterable[str], listed: Iterable[str]) -> list[str]:
    """The fewest paths whose archives hold every chosen path and, from the listing, nothing else.

    A directory is taken whole when every listed path under it is chosen; ``"."`` stands for
    the whole workspace.
    """
    chosen_set = set(chosen)
    total: dict[str, int] = {}
    picked: dict[str, int] = {}
    for path in set(listed) | chosen_set:
        parents = PurePosixPath(path).parents
        for parent in parents:
            key = str(parent)
            total[key] = total.get(key, 0) + 1
            if path in chosen_set:
                picked[key] = picked.get(key, 0) + 1
    roots: set[str] = set()
    for path in chosen_set:
        ancestors = [str(p) for p in reversed(PurePosixPath(path).parents)]
        root = next((a for a in ancestors if picked.get(a, 0) == total[a]), path)
        roots.add(root)
    return sorted(roots)


class WorkspaceReader:
    """Lists and streams files out of one container's workspace."""

    def __init__(self, workdir: Workdir, container: str) -> None:
        self.workdir = workdir
        self.container = container
        self.workspace = workdir.workspace.rstrip("/") or "/"

    def listing(self) -> Listing:
        """The workspace's regular files and links (one exec; a full stream without ``find``)."""
        result = self.workdir.admin_exec(
            self.container, ["/bin/sh", "-c", LIST_SCRIPT, "list", self.workspace]
        )
        if result is not None:
            code, out = result
            found = parse_listing(out) if code in (0, 1) else None
            if found is not None:
                return found
        listing = Listing(by_find=False)
        for rel, info, _ in self.stream(["."]):
            if info.isfile() or info.islnk():
                listing.files.add(rel)
            elif info.issym():
                listing.links[rel] = info.linkname
        return listing

    def stream(self, roots: Iterable[str]) -> Iterator[Member]:
        """Each member under ``roots`` as (workspace-relative path, header, data or None).

        Names and hard-link targets are rebased onto the workspace and checked (tar-slip);
        the data stream is only valid until the next member is asked for.

        Raises:
            UnsafePathError: a member's name or link target escapes the workspace.
        """
        host = self.workdir.host_path()
        for root in roots:
            if host is not None:
                members = _host_members(host, root)
                first = next(members, None)  # None: the root is not there as listed
                if first is not None:
                    yield first
                    yield from members
                    continue
            base = PurePosixPath(root).parent if root != "." else PurePosixPath()
            path = f"{self.workspace}/." if root == "." else f"{self.workspace}/{root}"
            # Read in turn into one buffer, no helper thread: handing chunks between threads
            # cost more than it overlapped, and fresh buffers cost their allocation.
            chunks = self.workdir.get_tar(self.container, path, bytearray(CHUNK))
            with ChunkReader(chunks) as reader:
                for rel, info, data in tar_members(reader, require_end=True):
                    if info.islnk():
                        info.linkname = str(base / info.linkname)
                    yield str(base / rel), info, data


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)


def _host_members(volume: Path, root: str) -> Iterator[Member]:
    """The members under ``root`` read off the volume's own directory on this host.

    What the engine's archive would hold, without the engine: every path component is opened
    relative to its parent with ``O_NOFOLLOW``, so a link planted in the workspace is reported
    as a link (and refused downstream), never followed out of the volume. Yields nothing when
    ``root`` cannot be reached that way (the caller then asks the engine).
    """
    parts = [] if root == "." else list(PurePosixPath(root).parts)
    try:
        fd = os.open(volume, _DIR_FLAGS)
    except OSError:
        return
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                return
            os.close(fd)
            fd = child
        if not parts:
            yield from _host_tree(fd, PurePosixPath())
            return
        try:
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError:
            return
        yield from _host_entry(fd, parts[-1], PurePosixPath(root), st)
    finally:
        os.close(fd)


def _host_tree(dir_fd: int, rel: PurePosixPath) -> Iterator[Member]:
    for name in sorted(os.listdir(dir_fd)):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone since it was listed
        yield from _host_entry(dir_fd, name, rel / name, st)


def _host_entry(dir_fd: int, name: str, rel: PurePosixPath, st: os.stat_result) -> Iterator[Member]:
    info = tarfile.TarInfo(str(rel))
    info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        yield str(rel), info, None
        child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            yield from _host_tree(child, rel)
        finally:
            os.close(child)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
        yield str(rel), info, None
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as data:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):  # swapped since it was looked at
                info.type = tarfile.FIFOTYPE
                yield str(rel), info, None
                return
            info.size = opened.st_size
            yield str(rel), info, data
    else:
        info.type = tarfile.FIFOTYPE  # a device, fifo or socket: not a regular file
        yield str(rel), info, None
