"""``validate`` compiles every template of a flow: syntax, and each function and filter named.

A template is only rendered when its task runs, so an unknown filter in an ``errors`` branch
would otherwise surface on the day that branch runs. Each problem names ``file:line``, the
task and the expression.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import nodes

from executor.flow.template import Renderer
from executor.flow.template.scan import PebbleSyntaxError, Piece
from executor.flow.template.translate import MARKER, TEXTS, translate_template
from executor.flow.walk import Visit

if TYPE_CHECKING:
    from executor.flow.loader import LoadedFlow

_CHILD_LISTS = {"tasks", "errors", "finally", "then", "else", "cases", "defaults"}
_INTERNAL = {MARKER, TEXTS}


@cache
def _known() -> tuple[frozenset[str], frozenset[str], frozenset[str], jinja2.Environment]:
    renderer = Renderer()
    functions, filters = renderer.names
    env = renderer._env
    return functions, filters, frozenset(env.tests), env


def check_templates(loaded: LoadedFlow, visits: list[Visit]) -> list[str]:
    """Every template of every task that does not compile or names an unknown function/filter."""
    problems: list[str] = []
    for visit in visits:
        task = visit.task
        data = task.model_dump(by_alias=True, exclude=_CHILD_LISTS, exclude_defaults=True)
        for field, text in _strings(data):
            if "{{" not in text and "{%" not in text:
                continue
            for line, message in _template_problems(text):
                where = _line_of(loaded, (*visit.path, *field), text, line)
                problems.append(f"{where}: task '{task.id}': {message}")
    return problems


def _template_problems(text: str) -> Iterator[tuple[int, str]]:
    """(line in the template, problem) for one template."""
    functions, filters, tests, env = _known()
    try:
        translation = translate_template(text)
    except PebbleSyntaxError as exc:
        yield (exc.piece.line if exc.piece else 1), f"template syntax error: {exc}"
        return
    for piece, expression in zip(translation.pieces, translation.expressions, strict=True):
        try:
            tree = env.parse("{{ " + expression + " }}")
        except jinja2.TemplateSyntaxError as exc:
            yield piece.line, f"{(exc.message or 'syntax error').rstrip('.')} in {_shown(piece)}"
            continue
        for node in tree.find_all((nodes.Call, nodes.Filter, nodes.Test)):
            name = _unknown(node, functions, filters, tests)
            if name is not None:
                yield piece.line, f"{name} in {_shown(piece)}"


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
