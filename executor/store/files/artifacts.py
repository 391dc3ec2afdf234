"""The artifact store: output files of executions under ``$EXECUTOR_HOME/artifacts``.

A file is addressed by a Kestra-style URI,
``kestra:///<namespace as path>/<flow>/executions/<execution>/tasks/<task>/<taskrun>/<path>``.

Only regular files are ever written here, each through a temporary file opened with
``O_NOFOLLOW | O_EXCL``, and reads refuse any path whose resolved form leaves the store: a link
planted in the store can never lead a later task or ``executor storage get`` to a host file.

A run reads through a store bound to its :class:`Reader`: Kestra's rule of what an execution may
read (its own files, its parent's, its namespace's) holds for every task and template function
that takes a ``kestra:///`` URI, and for the server's route that serves files to workers.
"""

from __future__ import annotations

import copy
import io
import os
import re
import shutil
import socket
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Self, cast

from executor.errors import NotFoundError, UnsafePathError
from executor.host import Owner
from executor.paths import safe_relative as safe_relative  # the one path rule, re-exported

SCHEME = "kestra://"
CHUNK = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def inside(root: Path, target: Path) -> bool:
    """Whether ``target``, with every link in its parents resolved, stays under ``root``."""
    real_root = root.resolve()
    real = target.parent.resolve() / target.name
    return real == real_root or real_root in real.parents


PART_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:-(?P<start>\d+))?\.part$")


def _writer() -> str:
    """``pid-start`` of this process: a sweep can tell a dead writer from a live one."""
    owner = Owner.current()
    return f"{owner.pid}-{owner.start}" if owner.start else str(owner.pid)


def sweep_partial_files(root: Path, *, dry_run: bool = False) -> list[Path]:
    """Remove the temporary ``.part`` files under ``root`` whose writer process is gone.

    A writer killed with SIGKILL cannot remove its own; a live writer's file is never touched.

    Returns:
        The files removed (or that would be, with ``dry_run``).
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    host = socket.gethostname()
    for dirpath, _, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            found = PART_NAME.match(name)
            if found is None:
                continue
            owner = Owner(int(found["pid"]), found["start"] or "", host)
            if owner.is_gone(host):
                path = Path(dirpath) / name
                if not dry_run:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def write_file(root: Path, rel: PurePosixPath, data: IO[bytes] | Iterable[bytes]) -> Path:
    """Write ``data`` to ``root/rel`` through a temporary file, never through a link.

    Args:
        root: the directory nothing may be written outside of.
        rel: a relative path (already checked with :func:`safe_relative`).
        data: a readable binary file object, or an iterable of byte chunks.

    Returns:
        The written file's path.

    Raises:
        UnsafePathError: the target, its parents' links resolved, is not under ``root``, or
            is itself a link.
    """
    target = root.joinpath(*safe_relative(str(rel)).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not inside(root, target) or target.is_symlink():
        raise UnsafePathError(f"{rel} would be written outside {root}")
    tmp = target.with_name(f".{target.name}.{_writer()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            chunks = getattr(data, "chunks", None)
            if isinstance(data, io.BufferedReader | io.FileIO) and _copy_in_kernel(data, out):
                pass
            elif callable(chunks):  # views of the archive's own buffers: no copy on the way
                for piece in chunks():
                    out.write(piece)
            elif hasattr(data, "read"):
                shutil.copyfileobj(cast(IO[bytes], data), out, CHUNK)
            else:
                for chunk in data:
                    out.write(chunk)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _copy_in_kernel(source: IO[bytes], out: IO[bytes]) -> bool:
    """Copy a host file's remaining bytes file to file, never through Python's memory.

    Returns False (nothing copied) where the kernel cannot, so the caller copies by reading.
    """
    try:
        src, dst = source.fileno(), out.fileno()
    except (OSError, ValueError):
        return False
    copied = 0
    while True:
        try:
            n = os.copy_file_range(src, dst, 1 << 30)
        except OSError:
            if copied:
                raise
            return False
        if not n:
            return True
        copied += n


@dataclass(frozen=True)
class Reader:
    """An execution that reads ``kestra:///`` files, and Kestra's rule of which it may read:

    - its own files (``<namespace>/<flow>/executions/<id>/...``);
    - those of the execution whose Subflow task started it (``parent``), as Kestra lets a
      subflow read what its parent passes it;
    - its namespace's: the namespace files (``<namespace>/_files/...``) and the files of every
      execution of a flow of that namespace. Not another namespace's, not even a child's.
    """

    namespace: str
    flow_id: str
    execution_id: str
    parent: tuple[str, str, str] | None = None  # (namespace, flow id, execution id)

    def may_read(self, rel: PurePosixPath) -> bool:
        """Whether the store path ``rel`` (a URI without ``kestra:///``) is one it may read."""
        parts = rel.parts
        for namespace, flow_id, execution_id in (
            (self.namespace, self.flow_id, self.execution_id),
            *([self.parent] if self.parent else []),
        ):
            own = (*namespace.split("."), flow_id, "executions", execution_id)
            if parts[: len(own)] == own and len(parts) > len(own):
                return True
        space = tuple(self.namespace.split("."))
        rest = parts[len(space) :] if parts[: len(space)] == space else ()
        return (len(rest) > 1 and rest[0] == "_files") or (
            len(rest) > 3 and rest[1] == "executions"
        )

    def check(self, uri: str) -> None:
        """Raise UnsafePathError, naming the URI and the rule, unless it may read ``uri``."""
        if not uri.startswith(SCHEME + "/"):
            raise NotFoundError(f"not a storage URI: {uri!r} (expected {SCHEME}/...)")
        if not self.may_read(safe_relative(uri[len(SCHEME) + 1 :])):
            raise UnsafePathError(
                f"{uri} is not a file of execution {self.execution_id} nor of namespace "
                f"{self.namespace}: a flow reads only its own execution's files, those of the "
                "execution that started it as a subflow, and its namespace's"
            )


# implements store.api.ArtifactStore (structurally: mypy checks it where store.local builds the
# Services), not by inheritance, which would make api.py and this module import each other
class LocalArtifactStore:
    """Files kept after an execution, fetched back by URI, in a directory of this host.

    Args:
        root: the store's directory.
        reader: the execution that reads through this store (:meth:`for_reader`): a URI it
            may not read is refused. ``None``: anything in the store (the CLI, the server).
    """

    def __init__(self, root: Path, reader: Reader | None = None) -> None:
        self.root = root
        self.reader = reader

    def for_reader(self, reader: Reader | None) -> Self:
        """The same store, read by ``reader`` (under its rule)."""
        bound = copy.copy(self)
        bound.reader = reader
        return bound

    def prefix(
        self, namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str
    ) -> PurePosixPath:
        """The store directory of one task run's files."""
        return PurePosixPath(
            *namespace.split("."),
            flow_id,
            "executions",
            execution_id,
            "tasks",
            task_id,
            task_run_id,
        )

    def uri(self, prefix: PurePosixPath, relative: str) -> str:
        """The URI of ``relative`` under ``prefix``."""
        return f"{SCHEME}/{prefix / safe_relative(relative)}"

    def path_of(self, uri: str) -> Path:
        """The local file of a URI.

        Raises:
            NotFoundError: not a storage URI.
            UnsafePathError: the URI climbs out of the store, or leads out through a link, or
                the reader may not read it.
        """
        if not uri.startswith(SCHEME + "/"):
            raise NotFoundError(f"not a storage URI: {uri!r} (expected {SCHEME}/...)")
        rel = safe_relative(uri[len(SCHEME) + 1 :])
        if self.reader is not None:
            self.reader.check(uri)
        path = self.root.joinpath(*rel.parts)
        if not inside(self.root, path):
            raise UnsafePathError(f"{uri} leads outside the artifact store")
        return path

    def write(
        self, prefix: PurePosixPath, relative: str, chunks: Iterable[bytes] | IO[bytes]
    ) -> str:
        """Store one file from a stream of bytes; returns its URI."""
        write_file(self.root, prefix / safe_relative(relative), chunks)
        return self.uri(prefix, relative)

    def open(self, uri: str) -> IO[bytes]:
        """Open a stored file for reading.

        Raises:
            NotFoundError: no such artifact.
            UnsafePathError: the URI leads outside the store or names a link.
        """
        path = self.path_of(uri)
        try:
            try:
                fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
            except FileNotFoundError:
                if not self._fetch(uri, path):
                    raise
                fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            raise NotFoundError(f"no artifact at {uri}") from None
        except OSError as exc:
            if path.is_symlink():
                raise UnsafePathError(f"{uri} is a link; the store never follows links") from None
            raise NotFoundError(f"cannot read {uri}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotFoundError(f"{uri} is not a file")
        return os.fdopen(fd, "rb")

    def _fetch(self, uri: str, path: Path) -> bool:
        """Bring a missing file in from elsewhere (``True`` when it is here now: fetched, or by
        another thread meanwhile); a store of this host's own has nowhere else to look."""
        if path.is_symlink():
            return False
        if path.exists():
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}-{threading.get_ident()}.{_writer()}.part")
        try:
            if not self.fetch_missing(uri, tmp):
                return False
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def fetch_missing(self, uri: str, dest: Path) -> bool:
        """Copy the file of ``uri`` from where this store mirrors (a worker's: the server's) to
        ``dest``, for its reader; ``False`` when there is none (here: never one)."""
        return False

    def size(self, uri: str) -> int:
        """The size in bytes of a stored file."""
        return self.path_of(uri).stat().st_size

    def delete(self, uri: str) -> bool:
        """Remove a stored file the reader may read; whether there was one."""
        path = self.path_of(uri)
        if path.is_symlink() or not path.is_file():
            return False
        path.unlink()
        return True

    def execution_files(self, namespace: str, flow_id: str, execution_id: str) -> list[str]:
        """The URIs of every file of one execution, sorted."""
        directory = self._execution_dir(namespace, flow_id, execution_id)
        return sorted(
            f"{SCHEME}/{p.relative_to(self.root).as_posix()}"
            for p in directory.rglob("*")
            if p.is_file() and not p.name.endswith(".part")
        )

    def purge(self, namespace: str, flow_id: str, execution_id: str) -> list[str]:
        """Remove every file of one execution; their URIs, sorted."""
        uris = self.execution_files(namespace, flow_id, execution_id)
        shutil.rmtree(self._execution_dir(namespace, flow_id, execution_id), ignore_errors=True)
        return uris

    def _execution_dir(self, namespace: str, flow_id: str, execution_id: str) -> Path:
        return self.root.joinpath(*namespace.split("."), flow_id, "executions", execution_id)
