"""Template functions that need the run: ``read()``, ``fileURI()``, ``errorLogs()``, ``kv()``.

A :class:`Renderer` takes a :class:`TemplateFunctions`; each entry is called with a
:class:`TemplateCall` (the variables of the template being rendered) before its own arguments,
so a function can find the flow's namespace or the current task. The run layer fills the
registry with what its services can answer; adding one is one line::

    functions.register("kv", lambda call, key, namespace=None: store.get(...))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TemplateCall:
    """What a template function knows of the template that calls it."""

    variables: Mapping[str, Any]

    @property
    def namespace(self) -> str | None:
        """The flow's namespace, when the template runs in a flow."""
        flow = self.variables.get("flow")
        value = flow.get("namespace") if isinstance(flow, Mapping) else None
        return value if isinstance(value, str) else None


TemplateFunction = Callable[..., Any]
"""``fn(call: TemplateCall, *args, **kwargs) -> value``."""


class TemplateFunctions:
    """A name -> function registry for the template functions that need context."""

    def __init__(self) -> None:
        self._functions: dict[str, TemplateFunction] = {}

    def register(self, name: str, function: TemplateFunction) -> None:
        """Make ``name(...)`` call ``function(call, ...)`` in templates (replaces any earlier)."""
        self._functions[name] = function

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def items(self) -> Iterator[tuple[str, TemplateFunction]]:
        return iter(self._functions.items())
