"""The sandboxed environment, with Pebble's lookup and undefined values that know their path.

While a template renders, :data:`PATHS` maps the containers reached from the context (by
identity) to their dotted path, so a missing key is named in full: ``outputs.x.vars.y``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import jinja2
from jinja2.exceptions import UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from executor.flow.template.methods import java_method

PATHS: ContextVar[dict[int, str] | None] = ContextVar("pebble_paths", default=None)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# What the sandbox asks a callable before calling it: never a path of the flow's.
_SANDBOX_PROBES = frozenset({"unsafe_callable", "alters_data"})


def root_paths(context: Mapping[str, Any]) -> dict[int, str]:
    """The context's containers by identity, named by their key: the start of :data:`PATHS`."""
    return {id(v): str(k) for k, v in context.items() if isinstance(v, Mapping | list | tuple)}


def _child_path(parent: str | None, key: Any) -> str | None:
    if parent is None:
        return None
    if isinstance(key, str) and _IDENTIFIER.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]"


# The class name shows in errors ("… not _PathUndefined"), so it keeps its underscore.
class _PathUndefined(jinja2.StrictUndefined):
    """Strict everywhere except attribute and item access, which chain and record the path.

    So ``outputs.x.vars.y ?? 'd'`` and ``| default`` work when ``outputs.x`` is missing, and
    using the value anywhere else fails with ``undefined name 'outputs.x.vars.y'``.
    """

    __slots__ = ("_path", "_root")

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[jinja2.TemplateRuntimeError] = UndefinedError,
        path: str | None = None,
        root: str | None = None,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if path is None and obj is missing and isinstance(name, str):
            path = name
        self._path = path
        self._root = root or path

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint or self._path is None:
            return super()._undefined_message
        if self._root and self._root != self._path:
            return f"undefined name {self._path!r} ({self._root!r} is not defined)"
        return f"undefined name {self._path!r}"

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__" or name in _SANDBOX_PROBES:
            raise AttributeError(name)
        return self._child(name)

    def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        # Calling a name that is not defined: a function (or a method) we do not have.
        if self._undefined_exception is not UndefinedError or self._path is None:
            self._fail_with_undefined_error()
        if "." in self._path or "[" in self._path:
            raise self._undefined_exception(f"unknown function or method {self._path!r}")
        raise self._undefined_exception(f"unknown function {self._path!r}")

    def __getitem__(self, key: Any) -> Any:
        return self._child(key)

    def _child(self, key: Any) -> _PathUndefined:
        if self._undefined_exception is not UndefinedError:
            self._fail_with_undefined_error()
        path = _child_path(self._path, key)
        if path is None:  # an unknown parent: keep the message about the first missing link
            return self
        return _PathUndefined(obj=self, name=key, path=path, root=self._root)


class PebbleEnvironment(SandboxedEnvironment):
    """The sandbox, with Pebble's lookup: a map's keys win over Python attributes."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, jinja2.Undefined):
            return obj[attribute]
        if isinstance(obj, Mapping) and attribute in obj:
            return self._track(obj, attribute, obj[attribute])
        method = java_method(obj, attribute)
        if method is not None:
            return method
        return self._track(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, jinja2.Undefined):
            return obj[argument]
        return self._track(obj, argument, super().getitem(obj, argument))

    @staticmethod
    def _track(parent: Any, key: Any, value: Any) -> Any:
        paths = PATHS.get()
        parent_path = paths.get(id(parent)) if paths is not None else None
        if isinstance(value, jinja2.Undefined):
            if value._undefined_exception is not UndefinedError:
                value._fail_with_undefined_error()  # unsafe access: never chain past it
            path = _child_path(parent_path, key)
            if path is None:
                return value
            return _PathUndefined(obj=parent, name=key, path=path)
        if (
            paths is not None
            and parent_path is not None
            and isinstance(value, Mapping | list | tuple)
        ):
            paths.setdefault(id(value), _child_path(parent_path, key) or parent_path)
        return value
