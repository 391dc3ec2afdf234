"""Pebble's and Kestra's filters, as :data:`FILTERS` for the environment.

Each filter refuses an undefined subject with its error (``undefined name 'x.y'``) rather than
treating it as empty, except ``default``, whose point is to replace it. A filter's name shows in
the errors of a bad call (``_date() got an unexpected keyword argument``), hence the underscored
names, also of those imported from the other modules.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
import jq
import yaml

from executor.flow.template.dates import (
    _date,
    _date_add,
    _timestamp,
    _timestamp_micro,
    _timestamp_milli,
    _timestamp_nano,
)
from executor.flow.template.printing import _dump_json, fail_if_undefined, to_text


def _is_empty(value: Any) -> bool:
    """Pebble's ``empty``: null, blank text or an empty container."""
    fail_if_undefined(value)
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping | list | tuple | set):
        return len(value) == 0
    return False


def _from_json(value: Any) -> Any:
    """Parse JSON text; null stays null."""
    return None if value is None else json.loads(to_text(value))


def _default(value: Any, default: Any = "") -> Any:
    """Pebble's ``default``: the fallback for undefined, null, blank text, empty containers."""
    if not isinstance(value, jinja2.Undefined) and not _is_empty(value):
        return value
    return default


def _keys(value: Any) -> list[Any]:
    fail_if_undefined(value)
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, list | tuple):
        return list(range(len(value)))
    raise TypeError(f"keys needs a map or a list, got {type(value).__name__}")


def _values(value: Any) -> list[Any]:
    fail_if_undefined(value)
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"values needs a map or a list, got {type(value).__name__}")


def _length(value: Any) -> int:
    fail_if_undefined(value)
    if value is None:
        return 0
    if isinstance(value, str | Mapping | list | tuple | set):
        return len(value)
    return len(to_text(value))


def _join(value: Any, separator: str = "") -> str:
    fail_if_undefined(value)
    if value is None:
        return ""
    return str(separator).join(to_text(item) for item in value)


def _replace(
    value: Any, pairs: Any, replacement: Any = None, count: int = -1, *, regexp: bool = False
) -> Any:
    """Kestra's ``replace({'old': 'new'}, regexp=false)``, also Jinja's ``replace(old, new)``."""
    fail_if_undefined(value)
    if value is None:
        return None
    if not isinstance(pairs, Mapping):
        if replacement is None:
            raise TypeError("replace needs a map of {'old': 'new'} or two strings")
        return to_text(value).replace(to_text(pairs), to_text(replacement), count)
    if isinstance(value, Mapping):
        return {k: _replace(v, pairs, regexp=regexp) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(v, pairs, regexp=regexp) for v in value]
    text = to_text(value)
    for old, new in pairs.items():
        if regexp:  # Java writes groups as $1; Python as \g<1>
            text = re.sub(to_text(old), re.sub(r"\$(\d+)", r"\\g<\1>", to_text(new)), text)
        else:
            text = text.replace(to_text(old), to_text(new))
    return text


def _split(value: Any, delimiter: str, limit: int | None = None) -> list[str]:
    """Pebble's ``split``: Java's ``String.split`` (the delimiter is a regular expression)."""
    text = to_text(value)
    if limit is not None and limit > 0:
        return re.split(delimiter, text, maxsplit=limit - 1)
    parts = re.split(delimiter, text)
    if limit is None or limit == 0:
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
    return parts


def _slice(value: Any, fromIndex: int = 0, toIndex: int | None = None) -> Any:
    fail_if_undefined(value)
    if isinstance(value, str | list | tuple):
        return value[fromIndex:toIndex]
    raise TypeError(f"slice needs a string or a list, got {type(value).__name__}")


def _merge(value: Any, other: Any) -> Any:
    fail_if_undefined(value)
    fail_if_undefined(other)
    if isinstance(value, Mapping) and isinstance(other, Mapping):
        return {**value, **other}
    if isinstance(value, list | tuple) and isinstance(other, list | tuple):
        return [*value, *other]
    raise TypeError("merge needs two maps or two lists")


def _capitalize(value: Any) -> str:
    text = to_text(value)
    return text[:1].upper() + text[1:]


def _abbreviate(value: Any, length: int) -> str:
    text = to_text(value)
    if len(text) <= length:
        return text
    return text[: max(length - 3, 0)] + "..."


def _slugify(value: Any) -> str:
    """Kestra's slugify: blanks to dashes, accents dropped, other symbols removed, lower case."""
    text = unicodedata.normalize("NFD", re.sub(r"\s", "-", to_text(value)))
    text = re.sub(r"[^\w-]", "", text, flags=re.ASCII).replace("_", "-")
    return re.sub(r"-{2,}", "-", text).strip("-").lower()


def _number(value: Any, type: str | None = None) -> Any:
    fail_if_undefined(value)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    text = to_text(value).strip()
    kind = (type or "").upper()
    if kind in ("INT", "LONG", "BIGINTEGER"):
        return int(text)
    if kind in ("FLOAT", "DOUBLE", "BIGDECIMAL"):
        return float(text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _text_filter(operation: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    def apply(value: Any, argument: Any) -> Any:
        return operation(to_text(value), to_text(argument))

    return apply


def _hash(algorithm: str) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        return hashlib.new(algorithm, to_text(value).encode()).hexdigest()

    return apply


def _base64encode(value: Any) -> str:
    return base64.b64encode(to_text(value).encode()).decode("ascii")


def _base64decode(value: Any) -> str:
    return base64.b64decode(to_text(value)).decode()


def _first(value: Any) -> Any:
    """Pebble's ``first``: the first item of a list, character of a text, value of a map."""
    fail_if_undefined(value)
    items = _items(value)
    return items[0] if items else None


def _last(value: Any) -> Any:
    fail_if_undefined(value)
    items = _items(value)
    return items[-1] if items else None


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, str | list | tuple):
        return list(value)
    raise TypeError(f"needs a list, a map or a text, got {type(value).__name__}")


def _title(value: Any) -> str:
    """Pebble's ``title``: each word's first letter upper-cased, the rest left alone."""
    return re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), to_text(value))


def _urlencode(value: Any) -> str:
    """Java's ``URLEncoder.encode`` (UTF-8): spaces as ``+``, only ``*-._`` kept."""
    return urllib.parse.quote_plus(to_text(value), safe="*").replace("~", "%7E")


def _urldecode(value: Any) -> str:
    return urllib.parse.unquote_plus(to_text(value))


def _jq(value: Any, expression: str) -> list[Any]:
    """Kestra's ``jq``: every result of the jq program, as a list (``| first`` for one).

    Text is read as JSON when it is JSON (an HTTP body, a ``json`` input), as in Kestra.
    """
    fail_if_undefined(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    data = json.loads(_dump_json(value))  # dates and tuples as JSON would write them
    try:
        program = jq.compile(to_text(expression))
    except ValueError as exc:
        raise ValueError(f"jq: cannot compile {expression!r}: {exc}") from None
    try:
        return list(program.input_value(data).all())
    except ValueError as exc:
        raise ValueError(f"jq {expression!r} failed: {exc}") from None


def _distinct(value: Any) -> list[Any]:
    fail_if_undefined(value)
    seen: list[Any] = []
    for item in value or []:
        if item not in seen:
            seen.append(item)
    return seen


def _flatten(value: Any) -> list[Any]:
    fail_if_undefined(value)
    out: list[Any] = []
    for item in value or []:
        out.extend(item if isinstance(item, list | tuple) else [item])
    return out


def _chunk(value: Any, size: int) -> list[list[Any]]:
    fail_if_undefined(value)
    items = list(value or [])
    return [items[i : i + int(size)] for i in range(0, len(items), int(size))]


def _indent(value: Any, amount: int, prefix: str = " ") -> str:
    """Kestra's ``indent``: every line but the first indented by ``amount`` prefixes."""
    pad = str(prefix) * int(amount)
    return re.sub(r"(\r\n|\r|\n)", lambda m: m.group(1) + pad, to_text(value))


def _nindent(value: Any, amount: int, prefix: str = " ") -> str:
    """Kestra's ``nindent``: a line break first, then every line indented."""
    pad = str(prefix) * int(amount)
    return "\n" + pad + _indent(value, amount, prefix)


def _yaml(value: Any) -> str:
    fail_if_undefined(value)
    return yaml.safe_dump(json.loads(_dump_json(value)), sort_keys=False, allow_unicode=True)


def _ternary(value: Any, when_true: Any, when_false: Any) -> Any:
    """``flag | ternary(a, b)``: ``a`` when ``flag`` is true (Kestra's truthiness), else ``b``."""
    fail_if_undefined(value)
    truthy = value is not None and to_text(value).strip() not in {"false", "0", "-0", ""}
    return when_true if truthy else when_false


FILTERS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "json": _dump_json,
    "toJson": _dump_json,
    "jsonEncode": _dump_json,
    "fromJson": _from_json,
    "date": _date,
    "keys": _keys,
    "values": _values,
    "length": _length,
    "join": _join,
    "replace": _replace,
    "split": _split,
    "slice": _slice,
    "merge": _merge,
    "capitalize": _capitalize,
    "abbreviate": _abbreviate,
    "slugify": _slugify,
    "number": _number,
    "rsort": lambda value: sorted(value, reverse=True),
    "base64encode": _base64encode,
    "base64decode": _base64decode,
    "sha256": _hash("sha256"),
    "sha1": _hash("sha1"),
    "md5": _hash("md5"),
    "first": _first,
    "last": _last,
    "title": _title,
    "urlencode": _urlencode,
    "urldecode": _urldecode,
    "jq": _jq,
    "dateAdd": _date_add,
    "dateFormat": _date,  # the name some flows use for `date`
    "timestamp": _timestamp,
    "timestampMilli": _timestamp_milli,
    "timestampMicro": _timestamp_micro,
    "timestampNano": _timestamp_nano,
    "distinct": _distinct,
    "flatten": _flatten,
    "chunk": _chunk,
    "indent": _indent,
    "nindent": _nindent,
    "yaml": _yaml,
    "ternary": _ternary,
    "sha512": _hash("sha512"),
    "startsWith": _text_filter(lambda text, prefix: text.startswith(prefix)),
    "endsWith": _text_filter(lambda text, suffix: text.endswith(suffix)),
    "substringBefore": _text_filter(lambda text, sep: text.partition(sep)[0]),
    "substringAfter": _text_filter(lambda text, sep: text.partition(sep)[2]),
    "substringBeforeLast": _text_filter(
        lambda text, sep: text.rpartition(sep)[0] if sep in text else text
    ),
    "substringAfterLast": _text_filter(
        lambda text, sep: text.rpartition(sep)[2] if sep in text else ""
    ),
}
