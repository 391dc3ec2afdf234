"""How Pebble (Kestra) prints values: ``true``/``false``, null as nothing, containers as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import jinja2


def fail_if_undefined(value: Any) -> None:
    """Raise the undefined error ``value`` carries, if it is undefined."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()


def to_text(value: Any) -> str:
    """Print ``value`` as Pebble does; an undefined value raises its error."""
    fail_if_undefined(value)
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Mapping | list | tuple):
        return _dump_json(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _dump_json(value: Any) -> str:
    """Compact JSON, keeping non-ASCII text; dates as ISO-8601, sets sorted."""
    fail_if_undefined(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    fail_if_undefined(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
