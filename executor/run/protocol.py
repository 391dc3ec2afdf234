"""Kestra's script protocol: a whole stdout line ``::{...}::`` carries JSON for the executor.

The JSON object may hold ``outputs`` (an object, merged into ``outputs.<task>.vars``),
``metrics`` (a list of ``{name, type: counter|timer, value, tags}``; a timer's value is in
seconds) and ``logs`` (a list of ``{level, message}``). Any other line is plain output.

A line that looks like a protocol line but cannot be used raises :class:`ProtocolError`; the
caller logs it as a warning and keeps the line as plain output. That includes JSON nested deeper
than :data:`MAX_DEPTH` (a parser that recursed into it would exhaust the stack) and strings
holding a lone surrogate such as ``"\\ud800"`` (valid JSON, but not text: it cannot be stored
or printed as UTF-8).
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

METRIC_TYPES = ("counter", "timer")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}
_KEYS = ("outputs", "metrics", "logs")
MAX_DEPTH = 100
"""Objects and lists nested deeper than this in one protocol line are refused."""
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class ProtocolError(ValueError):
    """A line shaped like ``::{...}::`` whose content is not a valid protocol message."""


@dataclass(frozen=True)
class Metric:
    """One metric sent by a script.

    Attributes:
        name: the metric's name.
        type: ``counter`` or ``timer``.
        value: the amount to add (counter) or the duration in seconds (timer).
        tags: extra dimensions, all values as strings.
    """

    name: str
    type: str
    value: float
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolLogLine:
    """One log line sent by a script; ``level`` is one of :data:`LOG_LEVELS`."""

    level: str
    message: str


@dataclass(frozen=True)
class ProtocolMessage:
    """Everything one protocol line carried; absent keys are empty."""

    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    logs: list[ProtocolLogLine] = field(default_factory=list)


def parse_line(line: str) -> ProtocolMessage | None:
    """Parse one line of a task's stdout.

    Args:
        line: the line, with or without its line ending.

    Returns:
        The message, or ``None`` when the line is not a protocol line (plain output).

    Raises:
        ProtocolError: the line is shaped ``::{...}::`` but is not valid JSON or has a
            wrong shape; the message says what is wrong.
    """
    text = line.rstrip()
    if not (text.startswith("::{") and text.endswith("}::")):
        return None
    body = text[2:-2]
    depth = _nesting(body)
    if depth > MAX_DEPTH:
        raise ProtocolError(f"nested {depth} levels deep; at most {MAX_DEPTH} are accepted")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"not valid JSON: {exc}") from None
    _refuse_lone_surrogates(data)
    if not isinstance(data, dict):
        raise ProtocolError("the JSON must be an object")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ProtocolError(
            f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(_KEYS)}"
        )
    outputs = data.get("outputs")
    if outputs is None:
        outputs = {}
    elif not isinstance(outputs, dict):
        raise ProtocolError(f"'outputs' must be an object, got {_json_type(outputs)}")
    return ProtocolMessage(
        outputs=outputs,
        metrics=[_metric(i, m) for i, m in enumerate(_list(data, "metrics"))],
        logs=[_log_line(i, entry) for i, entry in enumerate(_list(data, "logs"))],
    )


def _nesting(body: str) -> int:
    """How deep objects and lists nest in JSON text, in linear time and without recursion.

    Escapes go first (so no quote inside a string is left), then strings, then all but the
    brackets, whose running depth C code sums.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", _ESCAPE.sub("", body)))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _refuse_lone_surrogates(data: Any) -> None:
    """Raise when a key or string anywhere in ``data`` holds a lone UTF-16 surrogate."""
    text = json.dumps(data, ensure_ascii=False)  # one C pass over every key and string
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        found = text[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        raise ProtocolError(
            f"a string holds a lone surrogate ({found}), which is not text"
        ) from None


def merge_outputs(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Deep-merge ``new`` into ``into``: nested objects merge, any other value of ``new`` wins.

    ``into`` never shares mutable values with ``new`` afterwards.

    Args:
        into: the outputs gathered so far; changed in place.
        new: outputs from a later protocol line.
    """
    for key, value in new.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merge_outputs(current, value)
        else:
            into[key] = copy.deepcopy(value)


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} must be a list, got {_json_type(value)}")
    return value


def _metric(index: int, item: Any) -> Metric:
    where = f"metrics[{index}]"
    if not isinstance(item, dict):
        raise ProtocolError(f"{where} must be an object, got {_json_type(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"{where}.name must be a non-empty string")
    kind = item.get("type")
    if kind not in METRIC_TYPES:
        raise ProtocolError(f"{where}.type must be 'counter' or 'timer', got {kind!r}")
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"{where}.value must be a finite number, got {value!r}")
    return Metric(name=name, type=kind, value=float(value), tags=_tags(where, item.get("tags")))


def _tags(where: str, tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ProtocolError(f"{where}.tags must be an object, got {_json_type(tags)}")
    result: dict[str, str] = {}
    for key, value in tags.items():
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            result[key] = str(value)
        else:
            raise ProtocolError(f"{where}.tags.{key} must be a string, got {_json_type(value)}")
    return result


def _log_line(index: int, item: Any) -> ProtocolLogLine:
    where = f"logs[{index}]"
    if not isinstance(item, dict):
        raise ProtocolError(f"{where} must be an object, got {_json_type(item)}")
    message = item.get("message")
    if not isinstance(message, str):
        raise ProtocolError(f"{where}.message must be a string, got {_json_type(message)}")
    level = item.get("level", "INFO")
    if not isinstance(level, str):
        raise ProtocolError(f"{where}.level must be a string, got {_json_type(level)}")
    normalized = _LEVEL_ALIASES.get(level.upper(), level.upper())
    if normalized not in LOG_LEVELS:
        raise ProtocolError(f"{where}.level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return ProtocolLogLine(level=normalized, message=message)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
