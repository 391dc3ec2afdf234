"""The artifact store: output files of executions under ``$EXECUTOR_HOME/artifacts``.

A file is addressed by a Kestra-style URI,
``kestra:///<namespace as path>/<flow>/executions/<execution>/tasks/<task>/<taskrun>/<path>``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

from executor.errors import NotFoundError, UnsafePathError

SCHEME = "kestra://"


def safe_relative(path: str) -> PurePosixPath:
    """A relative path that stays inside its root, or UnsafePathError."""
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts or path.startswith("~"):
        raise UnsafePathError(f"path {path!r} must be relative and stay inside the workspace")
    return p


class ArtifactStore:
    """Files kept after an execution, fetched back by URI."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def prefix(self, namespace: str, flow_id: str, execution_id: str, task_id: str,
               task_run_id: str) -> PurePosixPath:
        return PurePosixPath(*namespace.split("."), flow_id, "executions", execution_id, "tasks",
                             task_id, task_run_id)

    def uri(self, prefix: PurePosixPath, relative: str) -> str:
        return f"{SCHEME}/{prefix / safe_relative(relative)}"

    def path_of(self, uri: str) -> Path:
        """The local file of a URI; refuses URIs that climb out of the store."""
        if not uri.startswith(SCHEME + "/"):
            raise NotFoundError(f"not a storage URI: {uri!r} (expected {SCHEME}/...)")
        rel = safe_relative(uri[len(SCHEME) + 1:])
        return self.root / rel

    def write(self, prefix: PurePosixPath, relative: str, chunks: Iterable[bytes] | IO[bytes]) -> str:
        """Store one file from a stream of bytes; returns its URI."""
        target = self.root / prefix / safe_relative(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        with tmp.open("wb") as out:
            if hasattr(chunks, "read"):
                shutil.copyfileobj(chunks, out, 1024 * 1024)  # type: ignore[arg-type]
            else:
                for chunk in chunks:  # type: ignore[union-attr]
                    out.write(chunk)
        os.replace(tmp, target)
        return self.uri(prefix, relative)

    def open(self, uri: str) -> IO[bytes]:
        path = self.path_of(uri)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"no artifact at {uri}") from None
