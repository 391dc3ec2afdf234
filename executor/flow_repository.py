"""Where a run's flows are kept, for the tasks that read and change them (``git.PushFlows``,
``git.SyncFlows``, ``git.Push``'s ``flows``).

``executor run`` keeps its flows in a directory (``--flows``, default: the flow file's): a flow
is a YAML file there, found by its ``namespace`` and ``id`` wherever it lies below, and a new one
is written as ``<namespace>/<id>.yml``. The server keeps them in its store, with revisions
(``server.flow_repository``). A remote worker has neither: it is given no repository, and the
tasks say so (namespace files are another matter: a worker's run reaches the server's).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from executor.errors import FlowError
from executor.flow.host_access import refuse_host_openings
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow_text
from executor.names import check_namespace
from executor.subflows import identify_flow

_MAX_FILES = 10_000


@dataclass(frozen=True)
class KeptFlow:
    """One flow as kept: its source, and its revision where revisions are kept."""

    namespace: str
    id: str
    source: str
    revision: int | None = None


class FlowRepository(Protocol):
    """The flows a run may read and change."""

    described: str  # named in messages: "the flows directory /srv/flows", "this server's flows"

    def flows(self, namespace: str, children: bool = False) -> list[KeptFlow]:
        """The flows of ``namespace`` (and of the namespaces below it), by namespace and id."""
        ...

    def check(self, source: str, where: str) -> LoadedFlow:
        """``source`` parsed and validated as it would be saved (raises FlowError)."""
        ...

    def save(self, namespace: str, flow_id: str, source: str) -> tuple[KeptFlow, bool]:
        """Keep ``source`` as the flow; the flow kept, and whether anything changed."""
        ...

    def delete(self, namespace: str, flow_id: str) -> bool:
        """Remove the flow; ``False`` when there was none."""
        ...


def in_namespace(flow_namespace: str, namespace: str, children: bool) -> bool:
    """Whether a flow of ``flow_namespace`` belongs to ``namespace`` (or below, with children)."""
    return flow_namespace == namespace or (children and flow_namespace.startswith(namespace + "."))


class DirectoryFlows:
    """The flow files of one directory (and below), changed in place."""

    def __init__(self, root: Path, allow_host_options: bool = True) -> None:
        self.root = root
        self.allow_host_options = allow_host_options
        self.described = f"the flows directory {root}"

    def _paths(self) -> dict[tuple[str, str], Path]:
        found: dict[tuple[str, str], Path] = {}
        if not self.root.is_dir():
            return found
        for count, path in enumerate(sorted(self.root.rglob("*.y*ml"))):
            if count >= _MAX_FILES:
                break
            if path.is_symlink() or not path.is_file():
                continue
            key = identify_flow(path)
            if key is not None:
                found.setdefault(key, path)
        return found

    def flows(self, namespace: str, children: bool = False) -> list[KeptFlow]:
        kept = []
        for (ns, flow_id), path in sorted(self._paths().items()):
            if in_namespace(ns, namespace, children):
                kept.append(KeptFlow(ns, flow_id, path.read_text(encoding="utf-8")))
        return kept

    def check(self, source: str, where: str) -> LoadedFlow:
        loaded = load_flow_text(source, Path(where))
        refuse_host_openings(loaded, self.allow_host_options)
        return loaded

    def save(self, namespace: str, flow_id: str, source: str) -> tuple[KeptFlow, bool]:
        check_namespace(namespace)
        if not flow_id or "/" in flow_id or flow_id.startswith("."):
            raise FlowError(f"{flow_id!r} cannot name a flow file")
        path = self._paths().get((namespace, flow_id))
        kept = KeptFlow(namespace, flow_id, source)
        if path is not None and path.read_text(encoding="utf-8") == source:
            return kept, False
        target = path or self.root / namespace / f"{flow_id}.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(source)
            Path(tmp).replace(target)  # a reader sees the old flow or the new one, never half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return kept, True

    def delete(self, namespace: str, flow_id: str) -> bool:
        path = self._paths().get((namespace, flow_id))
        if path is None:
            return False
        path.unlink()
        return True
