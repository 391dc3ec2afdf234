"""Pebble's tests and functions, as :data:`TESTS` and :data:`FUNCTIONS` for the environment.

The ``_pebble_*`` entries are not for users: they are what the translated expressions call for
the operators and tags Jinja does not have (see :mod:`executor.flow.template.expression`).
A callable's name shows in the errors of a bad call (``_minimum() got an unexpected keyword
argument``), hence the underscored names imported from the other modules.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

import jinja2
import yaml
from jinja2.sandbox import MAX_RANGE

from executor.errors import TemplateError
from executor.flow.template.filters import _from_json, _is_empty
from executor.flow.template.printing import fail_if_undefined, to_text


class _Entry(NamedTuple):
    """One item of a map in ``{% for entry in map %}``, as Pebble gives it."""

    key: Any
    value: Any


def _pebble_iter(value: Any) -> Any:
    fail_if_undefined(value)
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [_Entry(k, v) for k, v in value.items()]
    return value


def _pebble_range(start: Any, end: Any, step: Any = 1) -> list[int]:
    for value in (start, end, step):
        fail_if_undefined(value)
    first, last, increment = int(start), int(end), int(step)
    if increment == 0:
        raise ValueError("range() step must not be 0")
    count = (last - first) // increment + 1
    if count > MAX_RANGE:
        raise ValueError(f"range() of {count} items is larger than the limit of {MAX_RANGE}")
    return list(range(first, last + (1 if increment > 0 else -1), increment))


def _pebble_contains(container: Any, item: Any) -> bool:
    fail_if_undefined(container)
    fail_if_undefined(item)
    if container is None:
        return False
    if isinstance(container, str):
        return to_text(item) in container
    if isinstance(item, list | tuple) and not isinstance(container, Mapping):
        return all(element in container for element in item)
    return bool(item in container)


def _pebble_concat(left: Any, right: Any) -> str:
    return to_text(left) + to_text(right)


def _is_present(value: Any) -> bool:
    return not isinstance(value, jinja2.Undefined) and value is not None


def _is_null(value: Any) -> bool:
    fail_if_undefined(value)
    return value is None


def _minimum(*values: Any) -> Any:
    return min(values[0] if len(values) == 1 else values)


def _maximum(*values: Any) -> Any:
    return max(values[0] if len(values) == 1 else values)


@jinja2.pass_context
def _current_each_output(context: Any, outputs: Any) -> Any:
    """Kestra's ``currentEachOutput(outputs.t)``: ``t``'s outputs for the current loop values.

    Indexes by each enclosing loop's value, outermost first; ``None`` outside any loop.
    """
    values = context.get("_each_values")
    if not values:
        return None
    found = outputs
    for value in values:
        fail_if_undefined(found)
        if not isinstance(found, Mapping) or value not in found:
            return None
        found = found[value]
    return found


def _unsupported(name: str) -> Callable[..., NoReturn]:
    def fail(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise TemplateError(f"{name}() is only available while a flow runs")

    return fail


def _is_in(value: Any, *choices: Any) -> bool:
    """``isIn(value, [a, b])`` or ``isIn(value, a, b)``: whether ``value`` is one of them."""
    fail_if_undefined(value)
    options = choices[0] if len(choices) == 1 and isinstance(choices[0], list | tuple) else choices
    return value in options


def _uuid() -> str:
    return str(uuid.uuid4())


def _id() -> str:
    """Kestra's ``id()``: a short random id (22 url-safe characters, like its own ids)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _random_int(lower: Any, upper: Any) -> int:
    """Kestra's ``randomInt(lower, upper)``: lower inclusive, upper exclusive."""
    low, high = int(lower), int(upper)
    if high <= low:
        raise ValueError(f"randomInt needs lower < upper, got {low} and {high}")
    return secrets.randbelow(high - low) + low


def _from_yaml(value: Any) -> Any:
    fail_if_undefined(value)
    return None if value is None else yaml.safe_load(to_text(value))


TESTS: dict[str, Callable[..., bool]] = {
    "_pebble_present": _is_present,
    "null": _is_null,
    "empty": _is_empty,
    "map": lambda value: isinstance(value, Mapping),
    "iterable": lambda value: isinstance(value, list | tuple | set),
}

FUNCTIONS: dict[str, Any] = {
    "range": _pebble_range,
    "min": _minimum,
    "max": _maximum,
    "fromJson": _from_json,
    "json": _from_json,  # Kestra's deprecated name for fromJson
    "_pebble_iter": _pebble_iter,
    "_pebble_range": _pebble_range,
    "_pebble_contains": _pebble_contains,
    "_pebble_concat": _pebble_concat,
    "currentEachOutput": _current_each_output,
    "isIn": _is_in,
    "uuid": _uuid,
    "id": _id,
    "randomInt": _random_int,
    "yaml": _from_yaml,
    # Replaced by the run's own (see executor.flow.template.registry).
    "read": _unsupported("read"),
    "kv": _unsupported("kv"),
    "fileURI": _unsupported("fileURI"),
    "errorLogs": _unsupported("errorLogs"),
}
