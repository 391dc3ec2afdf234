"""The template functions a run answers from its stores: ``kv()``, ``read()``, ``fileURI()``,
``errorLogs()``.

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
from executor.store.api import KvStore, Services
from executor.store.files.artifacts import SCHEME, Reader

_NAMESPACE_FILE = re.compile(rf"^{re.escape(SCHEME)}/(.+?)/_files/(.+)$")


def run_functions(
    stores: Services | None,
    error_logs: Callable[[], list[LogLine]],
    reader: Reader | None = None,
) -> TemplateFunctions:
    """The registry for one run.

    Args:
        stores: the run's stores, bound to its execution (``kv()`` reads its KV store,
            ``read()`` its namespace and artifact stores), or ``None`` when the run has none
            (then ``kv()`` is unknown and ``read()`` says so).
        error_logs: the ERROR lines logged so far in the execution.
        reader: the execution that reads: ``read()`` of a ``kestra:///`` URI follows its rule.
    """
    functions = TemplateFunctions()
    if stores is not None:
        kv = stores.kv
        functions.register(
            "kv",
            lambda call, key, namespace=None, errorOnMissing=True: _kv(
                kv, call, key, namespace, errorOnMissing
            ),
        )
    functions.register("read", lambda call, path: _read(stores, reader, call, path))
    functions.register("fileURI", _file_uri)
    functions.register("errorLogs", lambda call: [_log_entry(line) for line in error_logs()])
    return functions


def _kv(store: KvStore, call: TemplateCall, key: Any, namespace: Any, error: Any) -> Any:
    """Kestra's ``kv(key, namespace=flow.namespace, errorOnMissing=true)``."""
    if not isinstance(key, str) or not key:
        raise TemplateError(f"kv() needs a key, got {to_text(key)!r}")
    space = namespace if namespace is not None else call.namespace
    if not isinstance(space, str) or not space:
        raise TemplateError("kv() needs a namespace outside a flow")
    try:
        entry = store.get(space, key)
    except ExecutorError as exc:
        raise TemplateError(f"kv(): {exc.message}") from None
    if entry is None and error not in (False, "false"):
        raise TemplateError(f"kv(): no value for key '{key}' in namespace '{space}'")
    return entry.value if entry is not None else None


def _read(stores: Services | None, reader: Reader | None, call: TemplateCall, path: Any) -> str:
    """Kestra's ``read(path)``: a namespace file of the flow, or a ``kestra:///`` file that
    the execution may read (its own, its parent's, its namespace's)."""
    where = to_text(path)
    if stores is None:
        raise TemplateError("read() needs the run's stores")
    try:
        if reader is not None and where.startswith(SCHEME + "/"):
            reader.check(where)
        found = _NAMESPACE_FILE.match(where)
        if found is not None:
            data = stores.namespaces.read(found.group(1).replace("/", "."), found.group(2))
        elif where.startswith(SCHEME + "/"):
            with stores.artifacts.for_reader(reader).open(where) as fh:
                data = fh.read()
        else:
            namespace = call.namespace
            if namespace is None:
                raise TemplateError(f"read({where!r}): no flow namespace to read it from")
            data = stores.namespaces.read(namespace, where)
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
