"""Finding the flows that Subflow tasks name: a directory of flow files, indexed by id.

A Subflow names ``namespace`` and ``flowId``; the index maps each pair to the file that declares
it. Before anything runs, every literal reference is looked up and the call graph walked, so a
missing flow or a flow that calls itself (directly or around a loop) stops the run at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from executor.errors import ExecutorError, FlowError
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow, parse_yaml
from executor.flow.model import FLOW_CALLS, ForEachItemTask
from executor.flow.walk import walk

_MAX_FLOW_BYTES = 1 << 20
_MAX_FILES = 10_000


class SubflowNotFound(FlowError):
    """A Subflow names a flow the directory does not hold (or not at the revision asked).

    Kestra accepts such a flow when it is saved (the flow named may come later: CI creates flows
    in any order) and fails the execution; ``executor validate`` warns, ``executor run`` stops
    before anything starts.
    """


class FlowSource(Protocol):
    """Where Subflow tasks find flows: a directory (``FlowIndex``) or the server's store."""

    def find(
        self, namespace: str, flow_id: str, revision: int | None = None, where: str | None = None
    ) -> LoadedFlow:
        """The flow ``namespace.flow_id``, loaded (raises FlowError when it cannot be found)."""
        ...


class FlowIndex:
    """The flows of one directory (and below), by (namespace, id)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[tuple[str, str], Path] = {}
        self._loaded: dict[Path, LoadedFlow] = {}
        for count, path in enumerate(sorted(root.rglob("*.y*ml"))):
            if count >= _MAX_FILES:
                break
            key = identify_flow(path)
            if key is not None:
                self.paths.setdefault(key, path)

    def find(
        self, namespace: str, flow_id: str, revision: int | None = None, where: str | None = None
    ) -> LoadedFlow:
        """The flow ``namespace.flow_id``, loaded and validated.

        Raises:
            FlowError: no such flow in the directory, or not the revision asked for.
        """
        path = self.paths.get((namespace, flow_id))
        if path is None:
            raise SubflowNotFound(
                f"Unable to find flow '{namespace}'.'{flow_id}' in {self.root}", where=where
            )
        if path not in self._loaded:
            self._loaded[path] = load_flow(path)
        loaded = self._loaded[path]
        found = loaded.flow.revision
        if revision is not None and found is not None and found != revision:
            raise SubflowNotFound(
                f"flow '{namespace}'.'{flow_id}' is at revision {found} in {path}, not {revision}",
                where=where,
            )
        return loaded


def identify_flow(path: Path) -> tuple[str, str] | None:
    """(namespace, id) of a flow file, or ``None`` for anything else."""
    try:
        if path.stat().st_size > _MAX_FLOW_BYTES:
            return None
        data, _ = parse_yaml(path.read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError, ExecutorError):
        return None
    if not isinstance(data, dict):
        return None
    namespace, flow_id = data.get("namespace"), data.get("id")
    if isinstance(namespace, str) and isinstance(flow_id, str) and "tasks" in data:
        return namespace, flow_id
    return None


Missing = Callable[[FlowError], None]


def check_subflows(loaded: LoadedFlow, index: FlowSource, missing: Missing | None = None) -> None:
    """Every literal Subflow reference exists, and no flow calls itself, however indirectly.

    ``missing``, when given, receives each flow that cannot be found (a
    :class:`SubflowNotFound`, located) instead of it being raised: validation warns of it.

    Raises:
        FlowError: located at the Subflow task of ``loaded`` through which the problem is met
            (the flow the user asked for), naming the whole chain of calls.
    """
    _check(loaded, index, [(loaded.flow.namespace, loaded.flow.id)], None, missing)


def _check(
    loaded: LoadedFlow,
    index: FlowSource,
    stack: list[tuple[str, str]],
    origin: str | None,
    missing: Missing | None,
) -> None:
    for visit in walk(loaded.flow):
        task = visit.task
        if not isinstance(task, FLOW_CALLS) or "{{" in task.namespace + task.flowId:
            continue
        where = origin or loaded.task_where(task.id)
        key = (task.namespace, task.flowId)
        if key in stack:
            chain = " -> ".join(f"{ns}.{fid}" for ns, fid in [*stack, key])
            caller = "ForEachItem" if isinstance(task, ForEachItemTask) else "Subflow"
            raise FlowError(f"a {caller} calls its own flow again: {chain}", where=where)
        try:
            child = index.find(task.namespace, task.flowId, task.revision, where)
        except FlowError as exc:
            found = exc
            if origin is not None:
                via = " -> ".join(f"{ns}.{fid}" for ns, fid in stack)
                kind = SubflowNotFound if isinstance(exc, SubflowNotFound) else FlowError
                found = kind(f"{exc.message} (called through {via})", where=origin)
            if missing is not None and isinstance(exc, SubflowNotFound):
                missing(found)
                continue
            if found is exc:
                raise
            raise found from None
        _check(child, index, [*stack, key], where, missing)
