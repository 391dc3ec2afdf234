"""``validate`` compiles every template of a flow: syntax, and each function and filter named.

A template is only rendered when its task runs, so an unknown filter in an ``errors`` branch
would otherwise surface on the day that branch runs. Each problem names ``file:line``, the
task and the expression.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jinja2
from jinja2 import nodes

from executor.flow.loaded import LoadedFlow
from executor.flow.template import Renderer
from executor.flow.template.scan import PebbleSyntaxError, Piece
from executor.flow.template.translate import MARKER, TEXTS, translate_template
from executor.flow.template_names import Scope, task_scope, undefined_names
from executor.flow.walk import Visit

_CHILD_LISTS = {"tasks", "errors", "finally", "then", "else", "cases", "defaults"}
_INTERNAL = frozenset({MARKER, TEXTS})


@cache
def _known() -> tuple[frozenset[str], frozenset[str], frozenset[str], jinja2.Environment]:
    renderer = Renderer()
    functions, filters = renderer.names
    env = renderer._env
    return functions, filters, frozenset(env.tests), env


def check_templates(
    loaded: LoadedFlow, visits: list[Visit], envs: Mapping[str, str] | None = None
) -> list[str]:
    """Every template of every task that does not compile, names an unknown function/filter,
    or uses a name the task will not have when it runs (``envs``: the ``envs`` variables of
    the process that runs it; ``None``: ``envs.<name>`` is not judged)."""
    problems: list[str] = []
    for visit in visits:
        task = visit.task
        data = task.model_dump(by_alias=True, exclude=_CHILD_LISTS, exclude_defaults=True)
        scope = task_scope(visit, envs)
        for field, text in _strings(data):
            if "{{" not in text and "{%" not in text:
                continue
            names = scope if field[:1] != ("description",) else None  # never rendered
            for line, message in _template_problems(text, names):
                where = _line_of(loaded, (*visit.path, *field), text, line)
                problems.append(f"{where}: task '{task.id}': {message}")
    return problems


def _template_problems(text: str, scope: Scope | None = None) -> Iterator[tuple[int, str]]:
    """(line in the template, problem) for one template; undefined names too with a scope."""
    functions, filters, tests, env = _known()
    try:
        translation = translate_template(text)
    except PebbleSyntaxError as exc:
        yield (exc.piece.line if exc.piece else 1), f"template syntax error: {exc}"
        return
    compiled = True
    for piece, expression in zip(translation.pieces, translation.expressions, strict=True):
        try:
            tree = env.parse("{{ " + expression + " }}")
        except jinja2.TemplateSyntaxError as exc:
            compiled = False
            yield piece.line, f"{(exc.message or 'syntax error').rstrip('.')} in {_shown(piece)}"
            continue
        for node in tree.find_all((nodes.Call, nodes.Filter, nodes.Test)):
            name = _unknown(node, functions, filters, tests)
            if name is not None:
                compiled = False
                yield piece.line, f"{name} in {_shown(piece)}"
    if scope is None or not compiled:
        return
    try:
        whole = env.parse(translation.source)
        found = list(undefined_names(whole, scope, functions | _INTERNAL))
    except jinja2.TemplateError:
        return  # a tag Jinja refuses: the run reports it with its own words
    for line, name in found:
        yield line, f"undefined name '{name}': {_why(name)}"


def _why(name: str) -> str:
    """Where the name would come from, for the usual mistakes."""
    root = name.split(".", 1)[0]
    if root == "envs":
        return (
            f"no ENV_{name.split('.', 1)[1].upper()} variable in the environment "
            "(envs.<name> is ENV_<NAME>)"
        )
    if root == "outputDir":
        return "outputDir exists only in script tasks (Commands, Script, CLIs)"
    if root in ("outputFiles", "outputDirs") and "." in name:
        return f"this legacy task's {root} does not list '{name.split('.', 1)[1]}'"
    if root in ("outputFiles", "outputDirs"):
        return (
            f"{root} is a variable of legacy Bash/Python tasks only; another task's files are "
            f"outputs.<task id>.{root}"
        )
    if root == "workerTaskrun":
        return "workerTaskrun exists only inside a WorkingDirectory"
    return "the task has no such variable when it runs"


def _unknown(
    node: nodes.Node, functions: frozenset[str], filters: frozenset[str], tests: frozenset[str]
) -> str | None:
    if isinstance(node, nodes.Filter) and node.name not in filters:
        return f"unknown filter '{node.name}'"
    if isinstance(node, nodes.Test) and node.name not in tests:
        return f"unknown test '{node.name}'"
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name not in functions
        and node.node.name not in _INTERNAL
    ):
        return f"unknown function '{node.node.name}'"
    return None


def _shown(piece: Piece) -> str:
    text = piece.source
    return text if len(text) <= 120 else text[:119] + "…"


def _line_of(loaded: LoadedFlow, path: tuple[Any, ...], text: str, line: int) -> str:
    """``file:line`` of line ``line`` of a template written at ``path``."""
    where = loaded.where(path)
    if line <= 1 and "\n" not in text.strip():
        return where
    source = where.rpartition(":")[0]
    file, _, key_line = source.rpartition(":")
    if not key_line.isdigit():
        return where
    # A block scalar (`script: |`) starts on the line after its key.
    return f"{file}:{int(key_line) + line}"


def _strings(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))
