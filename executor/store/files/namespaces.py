"""Namespace files: a store of files per namespace under ``$EXECUTOR_HOME/namespaces``.

``executor namespace push NAMESPACE DIR`` copies a directory in; a WorkingDirectory (or a script
child) with ``namespaceFiles`` gets the chosen files seeded into its workspace.
Only regular files are kept: links found while pushing are skipped and reported, so the store
never holds anything that could lead a seed outside it.

Versions: ``<namespace>`` is a symbolic link to ``.versions/<namespace>/<version>``. A reader
that needs one whole version (a seed, an overlay mount, the workers' archive) resolves the link
once and marks the version *seen* (``<version>.seen`` beside it, written under a shared lock on
the version's directory); from then on that version never changes. A change (push, upload,
remove, move) then costs what it changes:

- while the current version is unseen, the change is made in it, in place, under an exclusive
  lock on its directory (a reader arriving meanwhile waits for that one change): new files are
  written beside the tree first and renamed into it only once all are written, a removed tree is
  renamed out before it is deleted, so a failure leaves the namespace as it was;
- once it has been seen, the change goes into a new version (the current files hard-linked into
  it, new ones renamed in) published by swapping the link with one rename; the seen version is
  kept for :data:`KEEP_SUPERSEDED_SECONDS`, and while a running workspace mounts it.

So a burst of uploads costs each upload its own files, and only the first change after a seed
links the whole tree again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import struct
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.names import check_namespace, is_namespace
from executor.paths import safe_relative
from executor.store.files.artifacts import Reader, inside, write_file

VERSIONS = ".versions"
SEEN = ".seen"  # beside a version: a reader saw it, so it never changes again
STAGING = ".staging-"  # files being written, beside the versions, before they join one
TRASH = ".trash-"  # a removed tree on its way out
_EOCD_SIZE = 22  # a zip's end of central directory record, without its comment
_ZIP64_LOCATOR_SIZE = 20
# A seed that resolved an old version has this long to open its files before they may go.
KEEP_SUPERSEDED_SECONDS = 15 * 60


@dataclass(frozen=True)
class NamespaceFile:
    """One stored file: its path in the namespace and on the host."""

    namespace: str
    path: str
    host: Path
    size: int


@dataclass
class PushResult:
    """What a push copied and what it skipped."""

    copied: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)


# implements store.api.NamespaceStore (structurally, checked where store.local builds the Services)
class LocalNamespaceStore:
    """Files per namespace on the host, one directory each.

    ``in_use``: the versions overlay workspaces mount now (``engine.overlay.lowers_in_use``,
    wired by ``app.py``); a version mounted is never pruned.
    """

    def __init__(self, root: Path, in_use: Callable[[], set[Path]] | None = None) -> None:
        self.root = root
        self.in_use = in_use

    def _dir(self, namespace: str) -> Path:
        return self.root / check_namespace(namespace)

    def for_reader(self, reader: Reader) -> LocalNamespaceStore:
        """The same store: a run on this host uses any namespace's files, as Kestra's open
        source edition lets it (a worker's run is held to its namespace by the server)."""
        return self

    def exists(self, namespace: str) -> bool:
        """Whether the namespace has a directory in the store."""
        return self._dir(namespace).is_dir()

    def namespaces(self) -> list[str]:
        """Every namespace that has files, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_namespace(p.name))

    def push(
        self, namespace: str, source: Path, prefix: str = "", *, replace: bool = False
    ) -> PushResult:
        """Copy the regular files under ``source`` into the namespace (same paths win).

        The namespace's new content is published at once.

        Args:
            namespace: the namespace to add files to.
            source: a host directory.
            prefix: a relative directory in the namespace to put them under.
            replace: the new version holds only ``source``'s files (a worker mirroring the
                server's namespace), not the files already there.

        Raises:
            UsageError: ``source`` is not a directory, the namespace is invalid, or a file's
                path is a directory of the namespace (or lies under one of its files).
        """
        if not source.is_dir():
            raise UsageError(f"{source} is not a directory")
        base = PurePosixPath(safe_relative(prefix)) if prefix else PurePosixPath()
        result = PushResult()
        writing = self._fresh(namespace) if replace else self._adding(namespace)
        with writing as dest:
            for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
                dirnames.sort()
                rel_dir = Path(dirpath).relative_to(source)
                for name in sorted(filenames) + [
                    d for d in dirnames if (Path(dirpath) / d).is_symlink()
                ]:
                    path = Path(dirpath) / name
                    rel = base.joinpath(*rel_dir.parts, name)
                    st = path.lstat()
                    if not stat.S_ISREG(st.st_mode):
                        result.skipped.append(f"{rel} (not a regular file)")
                        continue
                    with path.open("rb") as fh:
                        write_file(dest, rel, fh)
                    result.copied += 1
                    result.bytes += st.st_size
        return result

    # ----- one file or directory at a time (the server's namespace-file API)

    def put(self, namespace: str, path: str, data: IO[bytes]) -> None:
        """Write one file (replacing it), published at once.

        Raises:
            UnsafePathError: ``path`` is absolute or climbs out of the namespace.
            UsageError: ``path`` is a directory, or lies under a file.
        """
        rel = safe_relative(path)
        with self._adding(namespace) as staging:
            write_file(staging, rel, data)

    def put_zip(
        self,
        namespace: str,
        directory: str,
        archive: IO[bytes],
        max_bytes: int,
        max_members: int | None = None,
        *,
        replace: bool = False,
    ) -> int:
        """Extract a zip's regular files under ``directory`` (``""``: the namespace's root).

        Every member is checked before anything is written: a member that climbs out, two
        members one of which would be the other's directory (``x`` and ``x/y``), an archive
        of more than ``max_members`` files or that unpacks to more than ``max_bytes``: each
        changes nothing. ``replace``: the zip's files become the namespace's only files.

        Returns:
            How many files were written.

        Raises:
            UnsafePathError: a member's path escapes.
            UsageError: not a zip, too many members, too large once unpacked, or a clash.
        """
        base = PurePosixPath(safe_relative(directory)) if directory else PurePosixPath()
        if max_members is not None and zip_entries(archive, max_members) > max_members:
            raise UsageError(f"the zip holds more than {max_members} entries (files and folders)")
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise UsageError("the uploaded .zip is not a zip archive") from None
        with zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if max_members is not None and len(members) > max_members:
                raise UsageError(f"the zip holds {len(members)} files; at most {max_members}")
            total = sum(m.file_size for m in members)
            if total > max_bytes:
                raise UsageError(f"the zip unpacks to {total} bytes, more than {max_bytes}")
            targets = [(m, base / safe_relative(m.filename)) for m in members]
            _check_no_clash([rel for _, rel in targets], "the zip")
            with self._fresh(namespace) if replace else self._adding(namespace) as staging:
                for member, rel in targets:
                    with zf.open(member) as data:
                        write_file(staging, rel, data)  # zipfile reads no more than the header says
        return len(targets)

    def make_directory(self, namespace: str, path: str) -> None:
        """Create a directory (and its parents); nothing when it exists."""
        rel = safe_relative(path)
        with self._changing(namespace) as version:
            target = version.joinpath(*rel.parts)
            if not inside(version, target):
                raise UnsafePathError(f"{path!r} leads outside namespace {namespace!r}")
            _check_fits(version, [rel], directories=True)
            target.mkdir(parents=True, exist_ok=True)

    def move(self, namespace: str, source: str, dest: str) -> None:
        """Move a file or directory within the namespace.

        Raises:
            NotFoundError: no ``source``.
            UsageError: ``dest`` exists already, or lies under a file.
        """
        src_rel, dest_rel = safe_relative(source), safe_relative(dest)
        with self._changing(namespace) as version:
            src, target = version.joinpath(*src_rel.parts), version.joinpath(*dest_rel.parts)
            if not inside(version, src) or not inside(version, target):
                raise UnsafePathError(f"{source!r} or {dest!r} leads outside the namespace")
            if not (src.exists() and not src.is_symlink()):
                raise NotFoundError(f"no {source!r} in namespace {namespace!r}")
            if target.exists() or target.is_symlink():
                raise UsageError(f"{dest!r} already exists in namespace {namespace!r}")
            _check_fits(version, [dest_rel])
            target.parent.mkdir(parents=True, exist_ok=True)
            src.rename(target)

    def locate(self, namespace: str, path: str) -> Path:
        """The host path of a file or directory of the current version (``""``: the root).

        Raises:
            NotFoundError: no such namespace or path.
            UnsafePathError: ``path`` escapes the namespace.
        """
        root = self._dir(namespace).resolve()
        if not root.is_dir():
            raise NotFoundError(f"namespace {namespace!r} has no files")
        target = root.joinpath(*safe_relative(path).parts) if path else root
        if not inside(root, target):
            raise UnsafePathError(f"{path!r} leads outside namespace {namespace!r}")
        if not target.exists() or target.is_symlink():
            raise NotFoundError(f"no {path!r} in namespace {namespace!r}")
        return target

    # ----- versions

    def _versions(self, namespace: str) -> Path:
        return self.root / VERSIONS / check_namespace(namespace)

    def _writer_lock(self, namespace: str) -> IO[str]:
        """The lock file whose exclusive lock makes the namespace's changes take turns."""
        versions = self._versions(namespace)
        versions.mkdir(parents=True, exist_ok=True)
        return (versions.parent / f"{namespace}.lock").open("a")

    @contextlib.contextmanager
    def _changing(self, namespace: str) -> Iterator[Path]:
        """The namespace's tree to change in one step, published when the block ends.

        It is the current version itself while no reader has seen it (locked against readers
        meanwhile), else a new version holding links to the current files.
        """
        with self._writer_lock(namespace) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self._current_version(namespace)
            in_place = False
            if current is not None:
                fd = os.open(current, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # readers wait while it changes
                    if not _seen(current):
                        in_place = True
                        yield current
                finally:
                    os.close(fd)
            if in_place:
                self._prune(namespace)  # what earlier changes superseded, readers let go
                return
            with self._new_version(namespace, keep=True) as new:
                yield new

    @contextlib.contextmanager
    def _fresh(self, namespace: str) -> Iterator[Path]:
        """An empty new version, published when the block ends (the namespace's new content)."""
        with self._writer_lock(namespace) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self._new_version(namespace, keep=False) as new:
                yield new

    @contextlib.contextmanager
    def _new_version(self, namespace: str, *, keep: bool) -> Iterator[Path]:
        """A new version to fill (the current files hard-linked in when ``keep``), published
        on success, removed on failure; the writer lock is held."""
        current = self._dir(namespace)
        new = self._versions(namespace) / f"{time.time_ns()}-{os.getpid()}"
        new.mkdir()
        try:
            if keep and current.is_dir():
                _link_tree(current.resolve(), new)
            yield new
            self._publish(namespace, new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        self._prune(namespace)

    @contextlib.contextmanager
    def _adding(self, namespace: str) -> Iterator[Path]:
        """A directory to write new files into, beside the namespace (no lock held meanwhile);
        when the block ends they all join the namespace in one change, replacing files of the
        same paths. A failure, or a file whose path clashes with the tree, changes nothing."""
        versions = self._versions(namespace)
        versions.mkdir(parents=True, exist_ok=True)
        staging = versions / f"{STAGING}{time.time_ns()}-{os.getpid()}"
        staging.mkdir()
        try:
            yield staging
            added = list(_files_under(staging))
            with self._changing(namespace) as tree:
                _check_fits(tree, added)
                made: set[Path] = set()
                for rel in added:
                    target = tree.joinpath(*rel.parts)
                    if target.parent not in made:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        made.add(target.parent)
                    staging.joinpath(*rel.parts).replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _current_version(self, namespace: str) -> Path | None:
        """The directory the namespace's link points at (``None``: no link, or a store from
        before versions, whose directory the next change moves)."""
        link = self._dir(namespace)
        if not link.is_symlink():
            return None
        version = link.resolve()
        return version if version.parent == self._versions(namespace) and version.is_dir() else None

    def _observe(self, version: Path) -> None:
        """Mark a version seen (it never changes after): waits for a change being made in it."""
        if version.parent.parent.name != VERSIONS:
            return  # a store from before versions
        marker = version.with_name(version.name + SEEN)
        if marker.exists():
            return
        fd = os.open(version, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            with contextlib.suppress(OSError):  # a read-only home: nothing can change it anyway
                marker.touch()
        finally:
            os.close(fd)

    def _publish(self, namespace: str, version: Path) -> None:
        """Point ``<namespace>`` at ``version`` with one rename."""
        link = self._dir(namespace)
        previous = link.resolve() if link.is_dir() else None
        if link.is_dir() and not link.is_symlink():
            # A store from before versions: the plain directory becomes the old version.
            previous = self._versions(namespace) / f"0-{os.getpid()}-plain"
            link.rename(previous)
        if previous is not None:
            os.utime(previous)  # superseded now: kept a while for seeds that resolved it
        tmp = self.root / f".{namespace}.{os.getpid()}.link"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(version.relative_to(self.root))
        tmp.replace(link)

    def _prune(self, namespace: str) -> None:
        """Remove versions superseded long enough ago that no seed can still be opening them."""
        link = self._dir(namespace)
        current = link.resolve() if link.is_symlink() else None
        cutoff = time.time() - KEEP_SUPERSEDED_SECONDS
        versions = self._versions(namespace)
        mounted = self.in_use() if self.in_use is not None else set()
        for version in versions.iterdir() if versions.is_dir() else ():
            if version.name.endswith(SEEN) or version.resolve() in mounted:
                continue  # a marker goes with its version; a running workspace's lower layer
            if version != current and version.lstat().st_mtime < cutoff:
                shutil.rmtree(version, ignore_errors=True)
                version.with_name(version.name + SEEN).unlink(missing_ok=True)

    def version(self, namespace: str) -> Path:
        """The directory of the namespace's current version (never written once published).

        Raises:
            NotFoundError: the namespace has no directory in the store.
        """
        root = self._dir(namespace).resolve()
        if not root.is_dir():
            known = ", ".join(self.namespaces()) or "none"
            raise NotFoundError(
                f"namespace {namespace!r} has no files in the store (known: {known}); "
                f"push them with `executor namespace push {namespace} DIR`"
            )
        self._observe(root)
        return root

    def mountable(self, namespace: str) -> Path | None:
        """The current version's directory when it may be mounted read-only in a workspace.

        ``None`` for an empty namespace, or a store from before versions (its directory is
        moved by the next push).

        Raises:
            NotFoundError: the namespace has no directory in the store.
        """
        version = self.version(namespace)
        if not self._dir(namespace).is_symlink() or version.parent != self._versions(namespace):
            return None
        with os.scandir(version) as entries:
            return version if any(True for _ in entries) else None

    def files(self, namespace: str) -> Iterator[NamespaceFile]:
        """Every regular file of the namespace, in path order.

        Raises:
            NotFoundError: the namespace has no directory in the store.
        """
        root = self.version(namespace)  # one version for the whole listing
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(root)
            for name in sorted(filenames):
                if name.startswith(".") and name.endswith(".part"):
                    continue
                path = Path(dirpath) / name
                st = path.lstat()
                if stat.S_ISREG(st.st_mode):
                    yield NamespaceFile(
                        namespace, str(PurePosixPath(*rel_dir.parts, name)), path, st.st_size
                    )

    def read(self, namespace: str, path: str) -> bytes:
        """The bytes of one namespace file (``path`` relative to its root; a leading ``/`` ok).

        Raises:
            NotFoundError: no such namespace or file.
        """
        root = self._dir(namespace).resolve()
        target = root.joinpath(*safe_relative(path.lstrip("/")).parts)
        if not inside(root, target) or not target.is_file():
            raise NotFoundError(f"namespace {namespace!r} has no file {path!r}")
        return target.read_bytes()

    def paths(self, namespace: str) -> list[str]:
        """The relative path of every file of the namespace, sorted.

        Raises:
            NotFoundError: the namespace has no directory in the store.
        """
        return [found.path for found in self.files(namespace)]

    def select(self, namespace: str, chosen: Callable[[str], bool]) -> list[NamespaceFile]:
        """The namespace's files whose path ``chosen`` keeps (include/exclude globs: a GlobSet)."""
        return [f for f in self.files(namespace) if chosen(f.path)]

    def remove(self, namespace: str, path: str | None = None) -> int:
        """Remove one file or directory of a namespace, or the whole namespace.

        Returns:
            How many files were removed.

        Raises:
            NotFoundError: no such namespace or path.
        """
        link = self._dir(namespace)
        if not link.is_dir():
            raise NotFoundError(f"namespace {namespace!r} has no files in the store")
        if path is None:
            count = sum(len(files) for _, _, files in os.walk(link.resolve()))
            with self._fresh(namespace) as empty:
                pass
            self._dir(namespace).unlink()
            shutil.rmtree(empty, ignore_errors=True)
            return count
        trash = self._versions(namespace) / f"{TRASH}{time.time_ns()}-{os.getpid()}"
        with self._changing(namespace) as version:
            target = version.joinpath(*safe_relative(path).parts)
            if not inside(version, target) or not (target.exists() or target.is_symlink()):
                raise NotFoundError(f"no {path!r} in namespace {namespace!r}")
            if target.is_dir() and not target.is_symlink():
                count = sum(len(files) for _, _, files in os.walk(target))
            else:
                count = 1
            target.rename(trash)  # gone from the tree in one step; deleted below
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)
        return count


def zip_entries(archive: IO[bytes], most: int) -> int:
    """How many entries a zip's central directory holds, counted up to ``most + 1`` by walking
    its headers, before ``zipfile`` lists it (a directory of a million entries would take
    memory to list); ``0`` when no end record is found (``zipfile`` then says what is wrong)."""
    archive.seek(0, os.SEEK_END)
    size = archive.tell()
    tail_size = min(size, _EOCD_SIZE + 0xFFFF)  # the record, then a comment of up to 64 KiB
    archive.seek(size - tail_size)
    tail = archive.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        archive.seek(0)
        return 0
    cd_size, cd_offset = struct.unpack_from("<LL", tail, at + 12)
    locator = at - _ZIP64_LOCATOR_SIZE
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        archive.seek(struct.unpack_from("<Q", tail, locator + 8)[0] + 40)  # the zip64 record
        cd_size, cd_offset = struct.unpack("<QQ", archive.read(16))
    archive.seek(cd_offset)
    directory = archive.read(min(cd_size, size))
    archive.seek(0)
    count, at = 0, 0
    while count <= most and directory.startswith(b"PK\x01\x02", at) and at + 46 <= len(directory):
        name, extra, comment = struct.unpack_from("<HHH", directory, at + 28)
        at += 46 + name + extra + comment
        count += 1
    return count


def _check_no_clash(paths: list[PurePosixPath], what: str) -> None:
    """Refuse a file whose path is another's directory (``x`` and ``x/y``)."""
    files = set(paths)
    for path in paths:
        for parent in path.parents:
            if parent in files:
                raise UsageError(
                    f"{what} holds both the file '{parent}' and '{path}' under it: "
                    f"'{parent}' cannot be a file and a directory"
                )


def _check_fits(tree: Path, paths: list[PurePosixPath], *, directories: bool = False) -> None:
    """Refuse paths that cannot be written in ``tree``: one under an existing file, or a file
    where a directory is (``directories``: directories are being made, that one is fine)."""
    fine: set[PurePosixPath] = set()  # directories (or nothing yet) already looked at
    for path in paths:
        for parent in reversed(path.parents[:-1]):  # outermost first, without '.'
            if parent in fine:
                continue
            found = tree.joinpath(*parent.parts)
            if found.is_symlink() or (found.exists() and not found.is_dir()):
                raise UsageError(f"'{parent}' is a file: '{path}' cannot be put under it")
            fine.add(parent)
        target = tree.joinpath(*path.parts)
        if not directories and target.is_dir() and not target.is_symlink():
            raise UsageError(f"'{path}' is a directory: a file cannot replace it")
        if directories and target.exists() and not target.is_dir():
            raise UsageError(f"'{path}' is a file: a directory cannot replace it")


def _files_under(root: Path) -> Iterator[PurePosixPath]:
    """Every regular file under ``root``, as a relative path."""
    for dirpath, _, filenames in os.walk(root, followlinks=False):
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            if stat.S_ISREG((Path(dirpath) / name).lstat().st_mode):
                yield PurePosixPath(*rel.parts, name)


def _seen(version: Path) -> bool:
    return version.with_name(version.name + SEEN).exists()


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link every regular file under ``source`` into ``dest`` (copy where links fail)."""
    for dirpath, _, filenames in os.walk(source, followlinks=False):
        rel = Path(dirpath).relative_to(source)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            src = Path(dirpath) / name
            if not stat.S_ISREG(src.lstat().st_mode) or (
                name.startswith(".") and name.endswith(".part")
            ):
                continue
            try:
                os.link(src, dest / rel / name)
            except OSError:
                shutil.copy2(src, dest / rel / name)
