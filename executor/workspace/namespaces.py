"""Namespace files: a store of files per namespace under ``$EXECUTOR_HOME/namespaces``.

``executor namespace push NAMESPACE DIR`` copies a directory in; a WorkingDirectory (or a script
child) with ``namespaceFiles`` gets the chosen files seeded into its workspace.
Only regular files are kept: links found while pushing are skipped and reported, so the store
never holds anything that could lead a seed outside it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from executor.errors import NotFoundError, UsageError
from executor.store.artifacts import inside, safe_relative, write_file
from executor.workspace.globs import GlobSet

NAMESPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


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
    """Files per namespace on the host, one directory each."""

    def __init__(self, root: Path) -> None:
        self.root = root

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

    def push(self, namespace: str, source: Path, prefix: str = "") -> PushResult:
        """Copy the regular files under ``source`` into the namespace (same paths win).

        Args:
            namespace: the namespace to add files to.
            source: a host directory.
            prefix: a relative directory in the namespace to put them under.

        Raises:
            UsageError: ``source`` is not a directory, or the namespace is invalid.
        """
        if not source.is_dir():
            raise UsageError(f"{source} is not a directory")
        base = PurePosixPath(safe_relative(prefix)) if prefix else PurePosixPath()
        dest = self._dir(namespace)
        dest.mkdir(parents=True, exist_ok=True)
        result = PushResult()
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

    def files(self, namespace: str) -> Iterator[NamespaceFile]:
        """Every regular file of the namespace, in path order.

        Raises:
            NotFoundError: the namespace has no directory in the store.
        """
        root = self._dir(namespace)
        if not root.is_dir():
            known = ", ".join(self.namespaces()) or "none"
            raise NotFoundError(
                f"namespace {namespace!r} has no files in the store (known: {known}); "
                f"push them with `executor namespace push {namespace} DIR`"
            )
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
        root = self._dir(namespace)
        if not root.is_dir():
            raise NotFoundError(f"namespace {namespace!r} has no files in the store")
        target = root.joinpath(*safe_relative(path).parts) if path else root
        if not inside(root, target) or not (target.exists() or target.is_symlink()):
            raise NotFoundError(f"no {path!r} in namespace {namespace!r}")
        if target.is_dir() and not target.is_symlink():
            count = sum(len(files) for _, _, files in os.walk(target))
            shutil.rmtree(target)
        else:
            target.unlink()
            count = 1
        return count
