"""The template functions a run answers from its stores: ``read()``, ``fileURI()``, ``errorLogs()``.

:func:`run_functions` builds the registry a run's :class:`Renderer` uses; a function that
needs another service is one ``functions.register(...)`` line there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from executor.errors import ExecutorError, TemplateError
from executor.flow.template.printing import to_text
from executor.flow.template.registry import TemplateCall, TemplateFunctions
from executor.model import LogLine
from executor.store.artifacts import SCHEME, Reader

_NAMESPACE_FILE = re.compile(rf"^{re.escape(SCHEME)}/(.+?)/_files/(.+)$")


KvLookup = Callable[[str, str], tuple[bool, Any]]


def run_functions(
    workspace: Any,
    error_logs: Callable[[], list[LogLine]],
    kv: KvLookup | None = None,
    reader: Reader | None = None,
) -> TemplateFunctions:
    """The registry for one run.

    Args:
        workspace: the workspace service (its ``namespaces`` and ``artifacts`` stores), or
            ``None`` when the run has none (then ``read()`` says so).
        error_logs: the ERROR lines logged so far in the execution.
        kv: ``(namespace, key) -> (found, value)`` over the KV store, for ``kv()``.
        reader: the execution that reads: ``read()`` of a ``kestra:///`` URI follows its rule.
    """
    functions = TemplateFunctions()
    if kv is not None:
        lookup = kv
        functions.register(
            "kv",
            lambda call, key, namespace=None, errorOnMissing=True: _kv(
                lookup, call, key, namespace, errorOnMissing
            ),
        )
    functions.register("read", lambda call, path: _read(workspace, reader, call, path))
    functions.register("fileURI", _file_uri)
    functions.register("errorLogs", lambda call: [_log_entry(line) for line in error_logs()])
    return functions


def _kv(lookup: KvLookup, call: TemplateCall, key: Any, namespace: Any, error: Any) -> Any:
    """Kestra's ``kv(key, namespace=flow.namespace, errorOnMissing=true)``."""
    if not isinstance(key, str) or not key:
        raise TemplateError(f"kv() needs a key, got {to_text(key)!r}")
    space = namespace if namespace is not None else call.namespace
    if not isinstance(space, str) or not space:
        raise TemplateError("kv() needs a namespace outside a flow")
    found, value = lookup(space, key)
    if not found and error not in (False, "false"):
        raise TemplateError(f"kv(): no value for key '{key}' in namespace '{space}'")
    return value if found else None


def _read(workspace: Any, reader: Reader | None, call: TemplateCall, path: Any) -> str:
    """Kestra's ``read(path)``: a namespace file of the flow, or a ``kestra:///`` file that
    the execution may read (its own, its parent's, its namespace's)."""
    where = to_text(path)
    if workspace is None:
        raise TemplateError("read() needs the run's stores")
    try:
        if reader is not None and where.startswith(SCHEME + "/"):
            reader.check(where)
        found = _NAMESPACE_FILE.match(where)
        if found is not None:
            data = workspace.namespaces.read(found.group(1).replace("/", "."), found.group(2))
        elif where.startswith(SCHEME + "/"):
            with workspace.artifacts.for_reader(reader).open(where) as fh:
                data = fh.read()
        else:
            namespace = call.namespace
            if namespace is None:
                raise TemplateError(f"read({where!r}): no flow namespace to read it from")
            data = workspace.namespaces.read(namespace, where)
    except TemplateError:
        raise
    except ExecutorError as exc:
        raise TemplateError(f"read({where!r}): {exc.message}") from None
    return str(data.decode("utf-8", "replace"))


def _file_uri(call: TemplateCall, path: Any) -> str:
    """Kestra's ``fileURI(path)``: the URI of a namespace file of the flow (read() reads it)."""
    namespace = call.namespace
    if namespace is None:
        raise TemplateError("fileURI() needs a flow namespace")
    return f"{SCHEME}/{namespace.replace('.', '/')}/_files/{to_text(path).lstrip('/')}"


def _log_entry(line: LogLine) -> dict[str, Any]:
    """A log line as Kestra's ``errorLogs()`` gives it."""
    return {
        "timestamp": line.timestamp.isoformat(),
        "taskId": line.task_id,
        "taskRunId": line.task_run_id,
        "executionId": line.execution_id,
        "level": "ERROR",
        "message": line.message,
    }
