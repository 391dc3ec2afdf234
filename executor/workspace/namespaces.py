"""Namespace files: a store of files per namespace under ``$EXECUTOR_HOME/namespaces``.

``executor namespace push NAMESPACE DIR`` copies a directory in; a WorkingDirectory (or a script
child) with ``namespaceFiles`` gets the chosen files seeded into its workspace.
Only regular files are kept: links found while pushing are skipped and reported, so the store
never holds anything that could lead a seed outside it.

Each push or remove publishes a new version atomically: the new tree is built in
``.versions/<namespace>/<version>`` (files of the previous version hard-linked, new ones written
beside them, never in place) and ``<namespace>`` is a symbolic link swapped onto it with one
rename. A seed resolves the link once, so it reads one whole version, never a mix. Versions
superseded more than :data:`KEEP_SUPERSEDED_SECONDS` ago are removed by the next push or remove.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from executor.engine.overlay import lowers_in_use
from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.store.artifacts import inside, safe_relative, write_file
from executor.workspace.globs import GlobSet

NAMESPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
VERSIONS = ".versions"
# A seed that resolved an old version has this long to open its files before they may go.
KEEP_SUPERSEDED_SECONDS = 15 * 60


def check_namespace(name: str) -> str:
    """``name`` when it is a valid namespace (``company.team``).

    Raises:
        UsageError: not lowercase letters, digits, dots, dashes and underscores.
    """
    if not NAMESPACE_PATTERN.match(name) or ".." in name:
        raise UsageError(f"{name!r} is not a namespace (lowercase letters, digits, '.', '_', '-')")
    return name


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


class NamespaceStore:
    """Files per namespace on the host, one directory each.

    ``overlays``: where overlay workspaces record the versions they mount (see
    ``engine.overlay``); a version mounted there is never pruned.
    """

    def __init__(self, root: Path, overlays: Path | None = None) -> None:
        self.root = root
        self.overlays = overlays

    def _dir(self, namespace: str) -> Path:
        return self.root / check_namespace(namespace)

    def exists(self, namespace: str) -> bool:
        """Whether the namespace has a directory in the store."""
        return self._dir(namespace).is_dir()

    def namespaces(self) -> list[str]:
        """Every namespace that has files, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and NAMESPACE_PATTERN.match(p.name)
        )

    def push(
        self, namespace: str, source: Path, prefix: str = "", *, replace: bool = False
    ) -> PushResult:
        """Copy the regular files under ``source`` into the namespace (same paths win).

        The namespace's new content is published at once, as a new version.

        Args:
            namespace: the namespace to add files to.
            source: a host directory.
            prefix: a relative directory in the namespace to put them under.
            replace: the new version holds only ``source``'s files (a worker mirroring the
                server's namespace), not the files already there.

        Raises:
            UsageError: ``source`` is not a directory, or the namespace is invalid.
        """
        if not source.is_dir():
            raise UsageError(f"{source} is not a directory")
        base = PurePosixPath(safe_relative(prefix)) if prefix else PurePosixPath()
        result = PushResult()
        with self._publishing(namespace, keep=not replace) as dest:
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
        """Write one file (replacing it), published as a new version.

        Raises:
            UnsafePathError: ``path`` is absolute or climbs out of the namespace.
        """
        rel = safe_relative(path)
        with self._publishing(namespace) as version:
            write_file(version, rel, data)

    def put_zip(self, namespace: str, directory: str, archive: IO[bytes], max_bytes: int) -> int:
        """Extract a zip's regular files under ``directory`` (``""``: the namespace's root).

        Every member is checked before anything is written: a member that climbs out, or an
        archive that unpacks to more than ``max_bytes``, changes nothing.

        Returns:
            How many files were written.

        Raises:
            UnsafePathError: a member's path escapes.
            UsageError: not a zip, or too large once unpacked.
        """
        base = PurePosixPath(safe_relative(directory)) if directory else PurePosixPath()
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise UsageError("the uploaded .zip is not a zip archive") from None
        with zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            total = sum(m.file_size for m in members)
            if total > max_bytes:
                raise UsageError(f"the zip unpacks to {total} bytes, more than {max_bytes}")
            targets = [(m, base / safe_relative(m.filename)) for m in members]
            with self._publishing(namespace) as version:
                for member, rel in targets:
                    with zf.open(member) as data:
                        write_file(version, rel, data)  # zipfile reads no more than the header says
        return len(targets)

    def make_directory(self, namespace: str, path: str) -> None:
        """Create a directory (and its parents); nothing when it exists."""
        rel = safe_relative(path)
        with self._publishing(namespace) as version:
            target = version.joinpath(*rel.parts)
            if not inside(version, target):
                raise UnsafePathError(f"{path!r} leads outside namespace {namespace!r}")
            target.mkdir(parents=True, exist_ok=True)

    def move(self, namespace: str, source: str, dest: str) -> None:
        """Move a file or directory within the namespace.

        Raises:
            NotFoundError: no ``source``.
            UsageError: ``dest`` exists already.
        """
        src_rel, dest_rel = safe_relative(source), safe_relative(dest)
        with self._publishing(namespace) as version:
            src, target = version.joinpath(*src_rel.parts), version.joinpath(*dest_rel.parts)
            if not inside(version, src) or not inside(version, target):
                raise UnsafePathError(f"{source!r} or {dest!r} leads outside the namespace")
            if not (src.exists() and not src.is_symlink()):
                raise NotFoundError(f"no {source!r} in namespace {namespace!r}")
            if target.exists() or target.is_symlink():
                raise UsageError(f"{dest!r} already exists in namespace {namespace!r}")
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

    @contextlib.contextmanager
    def _publishing(self, namespace: str, *, keep: bool = True) -> Iterator[Path]:
        """A new version to fill (the current files hard-linked in), published on success.

        Pushes and removes of one namespace take turns (a lock file); seeds never wait.
        """
        versions = self._versions(namespace)
        versions.mkdir(parents=True, exist_ok=True)
        with (versions.parent / f"{namespace}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self._dir(namespace)
            new = versions / f"{time.time_ns()}-{os.getpid()}"
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
        mounted = lowers_in_use(self.overlays) if self.overlays else set()
        for version in versions.iterdir() if versions.is_dir() else ():
            if version.resolve() in mounted:
                continue  # the lower layer of a running workspace: it must not change
            if version != current and version.lstat().st_mtime < cutoff:
                shutil.rmtree(version, ignore_errors=True)

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

    def select(self, namespace: str, globs: GlobSet) -> list[NamespaceFile]:
        """The namespace's files that the include/exclude globs choose."""
        return [f for f in self.files(namespace) if globs(f.path)]

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
            with self._publishing(namespace, keep=False) as empty:
                pass
            self._dir(namespace).unlink()
            shutil.rmtree(empty, ignore_errors=True)
            return count
        with self._publishing(namespace) as version:
            target = version.joinpath(*safe_relative(path).parts)
            if not inside(version, target) or not (target.exists() or target.is_symlink()):
                raise NotFoundError(f"no {path!r} in namespace {namespace!r}")
            if target.is_dir() and not target.is_symlink():
                count = sum(len(files) for _, _, files in os.walk(target))
                shutil.rmtree(target)
            else:
                target.unlink()
                count = 1
        return count


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
