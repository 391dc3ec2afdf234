"""Checks of a parsed flow that the models alone cannot make, each problem located.

Duplicate ids, ``outputs.x`` naming no task or a later one, workspace paths that escape, a Dag's
unknown or cyclic ``dependsOn``, and what may run inside a WorkingDirectory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from executor.flow.loaded import LoadedFlow
from executor.flow.model import (
    FOR_EACH_ITEM_PARTS,
    CloneTask,
    DagTask,
    ForEachItemTask,
    LocalFilesTask,
    NamespaceFiles,
    PauseTask,
    SubflowTask,
    Task,
    WorkingDirectoryTask,
)
from executor.flow.tasks_exec import ExecScript
from executor.flow.template_check import check_templates
from executor.flow.walk import DocPath, Visit, walk, walk_task
from executor.paths import from_namespace_root, unsafe_reason

Where = DocPath
# ``outputs.x`` or ``outputs['x']``, but not ``outputs.call.outputs.x`` (a Subflow's outputs)
OUTPUT_REF = re.compile(
    r"(?<![\w.\]])outputs\s*\.\s*([A-Za-z0-9_-]+)"
    r"|(?<![\w.\]])outputs\s*\[\s*['\"]([^'\"]+)['\"]\s*\]"
)
# Kestra refuses these as WorkingDirectory children; one container cannot hold them either.
NOT_IN_WORKDIR = (WorkingDirectoryTask, PauseTask, SubflowTask, ForEachItemTask)


def check_flow(loaded: LoadedFlow, envs: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of a model-valid flow, located; empty when it may run (``envs``: see
    ``loader.load_flow_text``)."""
    visits = list(walk(loaded.flow))
    return (
        check_references(loaded, visits)
        + check_workspace_paths(loaded, visits)
        + check_dags(loaded, visits)
        + check_workdir_children(loaded, visits)
        + check_templates(loaded, visits, envs)
    )


def check_workdir_children(loaded: LoadedFlow, visits: list[Visit]) -> list[str]:
    """A WorkingDirectory holds tasks that run in its container: no Pause, Subflow or nesting."""
    problems = []
    for visit in visits:
        workdir = visit.workdir
        if workdir is not None and isinstance(visit.task, NOT_IN_WORKDIR):
            kind = visit.task.type.rsplit(".", 1)[-1]
            problems.append(
                f"{loaded.where(visit.path)}: task '{visit.task.id}': a {kind} cannot run inside "
                f"the WorkingDirectory '{workdir.id}' (its children share one container)"
            )
    return problems


def check_dags(loaded: LoadedFlow, visits: list[Visit]) -> list[str]:
    """A Dag's ``dependsOn`` names tasks of the same Dag and makes no cycle."""
    problems = []
    for visit in visits:
        dag = visit.task
        if not isinstance(dag, DagTask):
            continue
        ids = [node.task.id for node in dag.tasks]
        edges = {node.task.id: list(node.dependsOn) for node in dag.tasks}
        for index, node in enumerate(dag.tasks):
            for dep in node.dependsOn:
                if dep not in ids:
                    where = loaded.where((*visit.path, "tasks", index, "dependsOn"))
                    problems.append(
                        f"{where}: task '{node.task.id}' (Dag '{dag.id}'): "
                        f"Not existing task id in dependency: {dep}"
                    )
        cycle = _cycle(edges)
        if cycle:
            problems.append(
                f"{loaded.where(visit.path)}: Dag '{dag.id}': Cyclic dependency detected: "
                + " -> ".join(cycle)
            )
    return problems


def _cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """One dependency cycle (its ids, first repeated last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in edges.get(node, []):
            if dep not in edges:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _namespace_globs(files: NamespaceFiles | None, base: Where) -> Iterator[tuple[Where, str]]:
    if files is None:
        return
    for key in ("include", "exclude"):
        for index, glob in enumerate(getattr(files, key)):
            yield (*base, "namespaceFiles", key, index), from_namespace_root(glob)


def _input_keys(files: dict[str, str] | str | None, base: Where) -> Iterator[tuple[Where, str]]:
    if isinstance(files, dict):
        for key in files:
            yield (*base, key), key


def _listed(globs: list[str] | None, base: Where) -> Iterator[tuple[Where, str]]:
    for index, glob in enumerate(globs or []):
        yield (*base, index), glob


def task_paths(task: Task, at: Where) -> Iterator[tuple[Where, str, str]]:
    """Each workspace path a task names: (document path, value, what it is)."""
    if isinstance(task, WorkingDirectoryTask | ExecScript):
        for where, value in _input_keys(task.inputFiles, (*at, "inputFiles")):
            yield where, value, "inputFiles path"
        for where, value in _listed(task.outputFiles, (*at, "outputFiles")):
            yield where, value, "outputFiles glob"
        for where, value in _namespace_globs(task.namespaceFiles, at):
            yield where, value, "namespaceFiles glob"
    if isinstance(task, WorkingDirectoryTask) and task.cache is not None:
        for where, value in _listed(task.cache.patterns, (*at, "cache", "patterns")):
            yield where, value, "cache pattern"
    if isinstance(task, LocalFilesTask):
        for where, value in _input_keys(task.inputs, (*at, "inputs")):
            yield where, value, "inputs path"
        for where, value in _listed(task.outputs, (*at, "outputs")):
            yield where, value, "outputs glob"
    if isinstance(task, CloneTask) and task.directory:
        yield (*at, "directory"), task.directory, "directory"


def check_workspace_paths(loaded: LoadedFlow, visits: list[Visit] | None = None) -> list[str]:
    """Every workspace path of the flow that is absolute or climbs out with ``..``."""
    problems: list[str] = []
    for visit in visits if visits is not None else walk(loaded.flow):
        at, task = visit.path, visit.task
        for where, value, what in task_paths(task, at):
            reason = unsafe_reason(value, templated=True)
            if reason is not None:
                field = ".".join(str(p) for p in where[len(at) :])
                problems.append(
                    f"{loaded.where(where)}: {field} (task '{task.id}'): {what} {value!r} {reason}"
                )
    return problems


def check_references(loaded: LoadedFlow, visits: list[Visit]) -> list[str]:
    """Duplicate ids, and ``outputs.x`` naming a task that does not exist or runs later."""
    problems: list[str] = []
    seen: dict[str, Where] = {}
    order: list[tuple[Where, Task]] = [(v.path, v.task) for v in visits]
    for path, task in order:
        if task.id in seen:
            problems.append(
                f"{loaded.where((*path, 'id'))}: duplicate task id '{task.id}' "
                f"(first at {loaded.where((*seen[task.id], 'id'))})"
            )
        else:
            seen[task.id] = path
    position = {task.id: i for i, (_, task) in reversed(list(enumerate(order)))}
    for i, (_, task) in enumerate(order):  # ForEachItem's own task runs publish outputs too
        if isinstance(task, ForEachItemTask):
            for suffix in FOR_EACH_ITEM_PARTS:
                position.setdefault(task.id + suffix, i)
    after = _dag_predecessors(visits)
    for i, (path, task) in enumerate(order):
        for field, text in _strings(task.model_dump(by_alias=True, exclude=_CHILD_LISTS)):
            for match in OUTPUT_REF.finditer(_expressions(text)):
                ref = match.group(1) or match.group(2)
                if ref not in position:
                    problems.append(
                        f"{loaded.where((*path, *field))}: task '{task.id}' refers to "
                        f"outputs.{ref}, but no task has that id"
                    )
                elif (
                    position[ref] >= i
                    and not _is_ancestor(order, ref, path)
                    and ref not in after.get(task.id, set())
                ):
                    problems.append(
                        f"{loaded.where((*path, *field))}: task '{task.id}' refers to "
                        f"outputs.{ref}, which has not run yet at that point"
                    )
    return problems


def _dag_predecessors(visits: list[Visit]) -> dict[str, set[str]]:
    """For each task inside a Dag node: every task id that ends before it (by ``dependsOn``)."""
    found: dict[str, set[str]] = {}
    for visit in visits:
        dag = visit.task
        if not isinstance(dag, DagTask):
            continue
        subtree = {n.task.id: {v.task.id for v in walk_task(n.task, ())} for n in dag.tasks}
        deps = {n.task.id: set(n.dependsOn) for n in dag.tasks}
        for node in deps:
            closure: set[str] = set()
            todo = list(deps[node])
            while todo:
                dep = todo.pop()
                if dep in closure or dep not in deps:
                    continue
                closure.add(dep)
                todo.extend(deps[dep])
            earlier = set().union(*(subtree[d] for d in closure)) if closure else set()
            for member in subtree[node]:
                found.setdefault(member, set()).update(earlier)
    return found


_CHILD_LISTS = {"tasks", "errors", "finally", "then", "else", "cases", "defaults"}


def _is_ancestor(order: list[tuple[Where, Task]], ref: str, path: Where) -> bool:
    for p, t in order:
        if t.id == ref:
            return path[: len(p)] == p
    return False


def _expressions(text: str) -> str:
    return " ".join(
        re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", text, flags=re.S)
        and [a or b for a, b in re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", text, flags=re.S)]
    )


def _strings(value: Any, path: Where = ()) -> Iterator[tuple[Where, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))
