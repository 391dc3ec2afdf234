"""Loading a flow file: YAML with positions, plugin defaults, validation that names every place.

Every problem carries ``file:line:column``, the field path and what was expected, and all
problems are reported at once.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from executor.errors import FlowLoadError, FlowValidationError
from executor.flow.checks import check_flow
from executor.flow.loaded import LoadedFlow as LoadedFlow  # its home is flow.loaded
from executor.flow.loaded import Path_, locate
from executor.flow.model import SUPPORTED_TASK_TYPES, Flow
from executor.flow.vendors import refusal

SUPPORTED_TYPES_HINT = "`executor validate --list-types` lists the task types this executor runs"
"""Said once per run or validate, after the problems, when a task type is unknown."""

MAX_DEPTH = 100
"""Collections nested deeper than this are refused (a flow needs a handful of levels)."""
MAX_ALIAS_EXPANSION = 100_000
"""Values that aliases may repeat, all aliases together; more is a "billion laughs" document."""


class _RefusedYAML(yaml.MarkedYAMLError):
    """Valid YAML the loader will not build: too deep, too large once aliases expand, recursive."""


class _PositionLoader(yaml.SafeLoader):
    """A safe loader with YAML 1.2 booleans (only true/false, so `id: on` stays a string).

    It also bounds what composing may cost: nesting deeper than :data:`MAX_DEPTH` and aliases
    that would repeat more than :data:`MAX_ALIAS_EXPANSION` values in all are refused where
    they occur, so a small hostile file can neither exhaust the stack nor the memory of
    whatever walks the document afterwards.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded = 0
        self._sizes: dict[yaml.Node, int] = {}  # values a node stands for, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(node) if node is not None else None
            if size is None:
                raise _RefusedYAML(None, None, "an alias refers to a node that contains it", mark)
            self._expanded += size
            if self._expanded > MAX_ALIAS_EXPANSION:
                raise _RefusedYAML(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION} values",
                    mark,
                )
            return node
        if self._depth >= MAX_DEPTH:
            raise _RefusedYAML(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._sizes[node] = 1 + sum(self._sizes[child] for child in _children(node))
        return node


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


_PositionLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PositionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _compose_positions(node: yaml.Node, path: Path_, out: dict[Path_, tuple[int, int]]) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out[(*path, key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
                _compose_positions(value, (*path, key.value), out)
                out[(*path, key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _compose_positions(item, (*path, index), out)


def parse_yaml(text: str, source: Path) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    """Parse YAML text into data and a map of value paths to (line, column).

    Raises:
        FlowLoadError: the text is not YAML, or is YAML the loader refuses to build (nested
            too deep, aliases expanding too far, a recursive alias); located.
    """
    try:
        return _load_once(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        prefix = "" if isinstance(exc, _RefusedYAML) else "not valid YAML: "
        raise FlowLoadError(f"{prefix}{problem}", where=where) from None


def _load_once(text: str) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    """Compose the document once, note where each value is, then build the data from it."""
    loader = _PositionLoader(text)
    positions: dict[Path_, tuple[int, int]] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, positions
        _compose_positions(node, (), positions)  # before merge keys (`<<`) are flattened into it
        return loader.construct_document(node), positions
    finally:
        loader.dispose()


def load_flow(path: Path | str, envs: Mapping[str, str] | None = None) -> LoadedFlow:
    """Read, parse and validate a flow file (``envs``: see :func:`load_flow_text`).

    Raises:
        FlowLoadError: the file is missing, unreadable or not YAML.
        FlowValidationError: the flow is not valid; every problem is listed and located.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowLoadError("no such flow file", where=str(source)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowLoadError(f"cannot read the flow file: {exc}", where=str(source)) from None
    return load_flow_text(text, source, envs)


def load_flow_text(text: str, source: Path, envs: Mapping[str, str] | None = None) -> LoadedFlow:
    """Parse and validate flow text; ``source`` names it in messages.

    ``envs`` are the ``{{ envs.name }}`` variables of the process that will run it
    (``Settings.envs``): a name outside them is a problem. ``None``: those names are not judged
    (the flow runs elsewhere, or was judged where it was saved).
    """
    data, positions = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise FlowValidationError(
            ["a flow is a YAML mapping with id, namespace and tasks"], where=f"{source}:1:1"
        )
    data = apply_plugin_defaults(data)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(err, data, source, positions) for err in errors]
        problems += _checks_despite(errors, data, source, positions, text)
        unknown_type = any(
            err["type"] == "union_tag_invalid"
            and refusal(str(err.get("ctx", {}).get("tag", ""))) is None
            for err in errors
        )
        raise FlowValidationError(
            sorted(set(problems), key=_line_key),
            where=None,
            hint=SUPPORTED_TYPES_HINT if unknown_type else None,
        ) from None
    loaded = LoadedFlow(flow, source, positions, text)
    problems = check_flow(loaded, envs)
    if problems:
        raise FlowValidationError(problems)
    return loaded


STAND_IN_TYPE = "io.kestra.plugin.core.flow.Sequential"
STAND_IN_LEAF = "io.kestra.plugin.core.log.Log"
"""What a task the models refused becomes for the other checks: it keeps its id and children."""


def _checks_despite(
    errors: list[Any],
    data: dict[str, Any],
    source: Path,
    positions: dict[Path_, tuple[int, int]],
    text: str,
) -> list[str]:
    """The other checks (references, templates, paths...) of a flow the models refused, so one
    pass reports every problem: each refused task stands in as a Sequential of its children,
    each unknown property is left out. Problems about the stand-ins are dropped (their own are
    already said); when the flow still does not build, only the first problems are reported.
    """
    repaired = copy.deepcopy(data)
    stand_ins: set[str] = set()
    for err in errors:
        if not _repair(repaired, list(err["loc"]), err["type"], stand_ins):
            return []
    try:
        flow = Flow.model_validate(repaired)
    except ValidationError:
        return []
    problems = check_flow(LoadedFlow(flow, source, positions, text))
    return [p for p in problems if not any(_mentions(p, task_id) for task_id in stand_ins)]


def _repair(data: Any, loc: list[Any], kind: str, stand_ins: set[str]) -> bool:
    """Change ``data`` so the error at ``loc`` goes; False when it cannot be done safely."""
    node, parents = data, []
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # a union's tag, not a field
        if isinstance(node, dict) and part == "finally_" and "finally" in node:
            part = "finally"
        parents.append((node, part))
        if not _has(node, part):
            break
        node = node[part]
    if kind == "extra_forbidden" and parents and isinstance(parents[-1][0], dict):
        parents[-1][0].pop(parents[-1][1], None)
        return True
    if kind == "missing" and len(parents) == 1 and parents[0][1] in ("id", "namespace"):
        data[parents[0][1]] = "flow"  # the flow's own name: nothing refers to it
        return True
    # the innermost task around the error becomes a stand-in with the same id and children
    for container, key in reversed(parents):
        task = container[key] if _has(container, key) else None
        if isinstance(task, dict) and isinstance(task.get("id"), str) and "type" in task:
            children = task.get("tasks")
            if isinstance(children, list) and children:
                container[key] = {"id": task["id"], "type": STAND_IN_TYPE, "tasks": children}
            else:
                container[key] = {"id": task["id"], "type": STAND_IN_LEAF, "message": "-"}
            stand_ins.add(task["id"])
            return True
    return False


def _has(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


def _mentions(problem: str, task_id: str) -> bool:
    """Whether a problem is about the task ``task_id`` or its outputs."""
    if f"'{task_id}'" in problem:
        return True
    return re.search(rf"outputs\.{re.escape(task_id)}\b", problem) is not None


def _line_key(problem: str) -> tuple[int, str]:
    m = re.match(r"[^:]*:(\d+):", problem)
    return (int(m.group(1)) if m else 0, problem)


def _describe(err: Any, data: Any, source: Path, positions: dict[Path_, tuple[int, int]]) -> str:
    """One located line for a pydantic error, with the union tags taken out of its path."""
    path: list[str | int] = []
    node = data
    loc = list(err["loc"])
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # a discriminator tag, not a field
        if isinstance(node, dict) and part == "finally_" and "finally" in node:
            part = "finally"
        path.append(part)
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (
                node[part]
                if isinstance(node, list) and isinstance(part, int) and part < len(node)
                else None
            )
        )
    field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    task_id = _enclosing_task_id(data, path)
    where = locate(source, positions, tuple(path))
    kind = err["type"]
    if kind == "union_tag_invalid":
        given = err.get("ctx", {}).get("tag", "?")
        message = refusal(str(given)) or (
            f"unknown task type {given!r} (not a task this executor runs)" + _suggest_type(given)
        )
    elif kind == "union_tag_not_found":
        message = "a task needs a 'type'"
    elif kind == "extra_forbidden":
        message = f"unknown property '{path[-1]}'" + _suggest(str(path[-1]), err)
    elif kind == "missing":
        message = f"missing required property '{path[-1]}'"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if kind not in ("value_error", "assertion_error") and "input" in err:
            message += f" (got {_short(err['input'])})"
    kind_of = "trigger" if path[:1] == ["triggers"] else "task"
    in_task = f" ({kind_of} '{task_id}')" if task_id else ""
    return f"{where}: {field or 'flow'}{in_task}: {message}"


def _suggest(name: str, err: Any) -> str:
    import difflib

    from executor.flow import model as m

    fields: set[str] = set()
    for cls in (
        m.ScriptTask,
        m.CloneTask,
        m.WorkingDirectoryTask,
        m.Flow,
        m.LogTask,
        m.LocalFilesTask,
        m.NamespaceFiles,
        m.Cache,
        m.Retry,
        m.Input,
        m.DockerOptions,
        m.FailTask,
        m.ParallelTask,
        m.IfTask,
        m.SwitchTask,
        m.ForEachTask,
        m.EachParallelTask,
        m.DagTask,
        m.DagNode,
        m.PauseTask,
        m.SubflowTask,
        m.ForEachItemTask,
        m.ForEachItemBatch,
    ):
        fields.update(f.alias or n for n, f in cls.model_fields.items())
    if name in fields:  # a real property of some other model: a suggestion would echo it
        return ""
    close = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def _suggest_type(given: Any) -> str:
    """``; did you mean '...'?`` for a misspelt task type (``...log.Logg``, ``shell.Command``)."""
    import difflib

    close = difflib.get_close_matches(str(given), SUPPORTED_TASK_TYPES, n=1, cutoff=0.85)
    return f"; did you mean '{close[0]}'?" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _enclosing_task_id(data: Any, path: list[str | int]) -> str | None:
    node, found = data, None
    for part in path:
        if isinstance(node, dict) and isinstance(node.get("id"), str) and "type" in node:
            found = node["id"]
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    if isinstance(node, dict) and isinstance(node.get("id"), str) and "type" in node:
        found = node["id"]
    return found


def apply_plugin_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Fill task properties from ``pluginDefaults``/``taskDefaults`` (``forced`` ones override)."""
    defaults = [
        d
        for key in ("pluginDefaults", "taskDefaults")
        for d in data.get(key) or []
        if isinstance(d, dict)
        and isinstance(d.get("type"), str)
        and isinstance(d.get("values"), dict)
    ]
    if not defaults:
        return data

    def apply(task: Any) -> Any:
        if not isinstance(task, dict):
            return task
        out = dict(task)
        kind = out.get("type")
        if isinstance(kind, str):
            for d in defaults:
                if kind == d["type"] or kind.startswith(d["type"].rstrip("*").rstrip(".") + "."):
                    for key, value in d["values"].items():
                        if d.get("forced") or key not in out:
                            out[key] = value
        for key in ("tasks", "errors", "finally", "then", "else", "defaults"):
            if isinstance(out.get(key), list):
                out[key] = [apply(t) for t in out[key]]
        if isinstance(out.get("cases"), dict):
            out["cases"] = {
                k: [apply(t) for t in v] if isinstance(v, list) else v
                for k, v in out["cases"].items()
            }
        if isinstance(out.get("task"), dict):  # a Dag node
            out["task"] = apply(out["task"])
        return out

    result = dict(data)
    for key in ("tasks", "errors", "finally"):
        if isinstance(result.get(key), list):
            result[key] = [apply(t) for t in result[key]]
    return result
