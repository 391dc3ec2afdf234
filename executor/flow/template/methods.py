"""The Java methods Pebble templates call on values: ``map.keySet()``, ``text.length()``…

Pebble runs on Java objects, so flows call their methods (``{{ inputs.m.keySet() }}``,
``{{ outputs.t.vars.name.toUpperCase() }}``). These are the common ones of ``Map``,
``String`` and ``List``, with Java's results; a map's own key of that name wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from executor.flow.template.printing import to_text

_MAP: dict[str, Callable[..., Any]] = {
    "keySet": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "entrySet": lambda m: [{"key": k, "value": v} for k, v in m.items()],
    "size": len,
    "isEmpty": lambda m: len(m) == 0,
    "containsKey": lambda m, key: key in m,
    "containsValue": lambda m, value: value in m.values(),
    "get": lambda m, key: m.get(key),
    "getOrDefault": lambda m, key, default: m.get(key, default),
}
_TEXT: dict[str, Callable[..., Any]] = {
    "length": len,
    "size": len,
    "isEmpty": lambda t: len(t) == 0,
    "isBlank": lambda t: not t.strip(),
    "toUpperCase": str.upper,
    "toLowerCase": str.lower,
    "trim": str.strip,
    "strip": str.strip,
    "startsWith": lambda t, prefix: t.startswith(to_text(prefix)),
    "endsWith": lambda t, suffix: t.endswith(to_text(suffix)),
    "contains": lambda t, part: to_text(part) in t,
    "equals": lambda t, other: t == to_text(other),
    "equalsIgnoreCase": lambda t, other: t.lower() == to_text(other).lower(),
    "indexOf": lambda t, part: t.find(to_text(part)),
    "substring": lambda t, start, end=None: t[int(start) : None if end is None else int(end)],
    "charAt": lambda t, index: t[int(index)],
    "concat": lambda t, other: t + to_text(other),
    "matches": lambda t, pattern: re.fullmatch(to_text(pattern), t) is not None,
    "replaceAll": lambda t, pattern, new: re.sub(
        to_text(pattern), re.sub(r"\$(\d+)", r"\\g<\1>", to_text(new)), t
    ),
    "split": lambda t, pattern: [p for p in re.split(to_text(pattern), t)],
}
_LIST: dict[str, Callable[..., Any]] = {
    "size": len,
    "isEmpty": lambda items: len(items) == 0,
    "contains": lambda items, item: item in items,
    "get": lambda items, index: items[int(index)],
    "indexOf": lambda items, item: items.index(item) if item in items else -1,
}


def java_method(obj: Any, name: str) -> Callable[..., Any] | None:
    """``obj.name`` as the Java method Pebble would call, bound to ``obj``; else ``None``."""
    if isinstance(obj, Mapping):
        table = _MAP
    elif isinstance(obj, str):
        table = _TEXT
    elif isinstance(obj, list | tuple):
        table = _LIST
    else:
        return None
    method = table.get(name)
    if method is None:
        return None

    def bound(*args: Any) -> Any:
        return method(obj, *args)

    bound.__name__ = name  # named in the errors of a bad call
    return bound
