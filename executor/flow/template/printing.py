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
        return date_text(value)
    return str(value)


def date_text(value: datetime | date) -> str:
    """A date or time as Kestra prints it: an instant in UTC ends in ``Z`` (Java's
    ``Instant.toString``, fractions in groups of three digits), other offsets as ISO-8601."""
    if not isinstance(value, datetime):
        return value.isoformat()
    offset = value.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        return value.isoformat()
    micros = value.microsecond
    spec = "seconds" if not micros else "milliseconds" if micros % 1000 == 0 else "microseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _dump_json(value: Any) -> str:
    """Compact JSON, keeping non-ASCII text; dates as ISO-8601, sets sorted."""
    fail_if_undefined(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    fail_if_undefined(value)
    if isinstance(value, datetime | date):
        return date_text(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
