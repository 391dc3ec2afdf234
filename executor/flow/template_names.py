"""Which names a task's templates may use, and the ones they use that a run would not define.

A run fails on an undefined name (``undefined name 'outputDir'``) only when the task renders;
``validate`` finds them first. A task sees Kestra's variables (``flow``, ``inputs``,
``outputs``, ``taskrun``...), plus ``outputDir`` in a script-shaped task, the named
``outputFiles`` of a legacy ``Bash``/``Python`` task, ``workerTaskrun`` inside a
WorkingDirectory, and ``envs.<name>`` for each ``ENV_<NAME>`` the run's settings hold. A use
guarded by ``??``, ``???``, ``| default`` or ``is defined`` anywhere in the template is fine,
as it is at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from jinja2 import nodes

from executor.flow.model import ScriptTask
from executor.flow.tasks_exec import ExecScript
from executor.flow.walk import Visit

COMMON = frozenset(
    {
        "flow",
        "execution",
        "inputs",
        "vars",
        "outputs",
        "labels",
        "workingDir",
        "envs",
        "trigger",
        "task",
        "taskrun",
        "parent",
        "parents",
        "loop",
        "_each_values",
    }
)
"""What every task's templates see (``trigger`` and ``parent`` when there is one)."""

_GUARDS = frozenset({"_pebble_present", "defined", "undefined", "none", "null"})


@dataclass(frozen=True)
class Scope:
    """The names one task's templates may use."""

    roots: frozenset[str]
    keys: Mapping[str, frozenset[str]]
    """Roots whose members are known in full: ``envs``, a legacy task's ``outputFiles``."""


def task_scope(visit: Visit, envs: Mapping[str, str] | None) -> Scope:
    """The names ``visit.task`` sees when it runs, ``envs`` being the ``envs`` variables
    (``None``: not known here, any ``envs.<name>`` passes)."""
    task = visit.task
    roots = set(COMMON)
    keys: dict[str, frozenset[str]] = {} if envs is None else {"envs": frozenset(envs)}
    if isinstance(task, ExecScript):
        roots.add("outputDir")
    if isinstance(task, ScriptTask) and task.is_legacy:
        roots.update({"outputFiles", "outputDirs"})
        keys["outputFiles"] = frozenset([*(task.outputFiles or []), *(task.outputsFiles or [])])
        keys["outputDirs"] = frozenset(task.outputDirs or [])
    if visit.workdir is not None:
        roots.add("workerTaskrun")
    return Scope(frozenset(roots), keys)


def undefined_names(
    tree: nodes.Template, scope: Scope, defined: frozenset[str]
) -> Iterator[tuple[int, str]]:
    """(line, name) of each name ``tree`` uses unguarded that the task does not have.

    Args:
        tree: the parsed (translated) template.
        scope: the task's names.
        defined: other names the template may use (functions, internal helpers).
    """
    from jinja2 import meta

    guarded = {_chain(n) for n in _guarded_nodes(tree)}
    guarded.discard(None)
    lazy = _in_branches(tree)
    reported: set[str] = set()
    free = meta.find_undeclared_variables(tree)
    for name_node in tree.find_all(nodes.Name):
        name = name_node.name
        if name_node.ctx != "load" or name not in free or name in defined or id(name_node) in lazy:
            continue
        if name not in scope.roots and name not in reported and not _covered(name, guarded):
            reported.add(name)
            yield name_node.lineno, name
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        member = _member(node)
        if member is None or id(node) in lazy:
            continue
        root, key = member
        known = scope.keys.get(root)
        path = f"{root}.{key}"
        if known is None or key in known or root not in free or path in reported:
            continue
        if not _covered(path, guarded):
            reported.add(path)
            yield node.lineno, path


def _in_branches(tree: nodes.Template) -> set[int]:
    """Ids of the nodes inside a branch of ``a ? b : c`` (or ``??``'s fallback): evaluated
    only when that branch is taken, so a name there may be meant to fail (Kestra's tests do)."""
    found: set[int] = set()
    for cond in tree.find_all(nodes.CondExpr):
        for branch in (cond.expr1, cond.expr2):
            if branch is not None:
                found.add(id(branch))
                found.update(id(n) for n in branch.find_all(nodes.Node))
    return found


def _member(node: nodes.Getattr | nodes.Getitem) -> tuple[str, str] | None:
    """``(root, key)`` of ``root.key`` or ``root['key']``, when that is what ``node`` is."""
    if not isinstance(node.node, nodes.Name):
        return None
    if isinstance(node, nodes.Getattr):
        return node.node.name, node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.node.name, node.arg.value
    return None


def _guarded_nodes(tree: nodes.Template) -> Iterator[nodes.Node]:
    """The expressions a template tests for presence or gives a default."""
    for test in tree.find_all(nodes.Test):
        if test.name in _GUARDS:
            yield test.node
    for flt in tree.find_all(nodes.Filter):
        if flt.name == "default" and flt.node is not None:
            yield flt.node


def _chain(node: nodes.Node) -> str | None:
    """``a.b.c`` for a chain of names, attributes and constant items; else ``None``."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        parent = _chain(node.node)
        return f"{parent}.{node.attr}" if parent else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        parent = _chain(node.node)
        return f"{parent}.{node.arg.value}" if parent else None
    return None


def _covered(path: str, guarded: set[str | None]) -> bool:
    """Whether a guard tests ``path`` or something under it (``a.b ?? x`` covers ``a``)."""
    return any(g == path or (g is not None and g.startswith(path + ".")) for g in guarded)
