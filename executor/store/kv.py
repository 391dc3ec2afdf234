"""The KV store's values and rules: typed values per namespace and key.

Kestra's KV store, on one host: ``core.kv.Set``/``Get``/``GetKeys``/``Delete``, the ``kv()``
template function and ``executor kv`` all come here. A value keeps the type it was set with
(``kvType``: STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION, JSON), stored as JSON text. A
value past its TTL reads as missing and is removed by the next write to its namespace. The
values live in the record database's ``kv`` table (:mod:`executor.store.kv_sql`); a worker's run
reaches them through the server (:mod:`executor.worker.remote`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from executor.errors import StoreError, UsageError
from executor.names import check_key as check_key  # the one name rule, re-exported
from executor.names import check_namespace as check_namespace

TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


class KeyExists(StoreError):
    """``overwrite: false`` and the key has a value."""


@dataclass(frozen=True)
class KvEntry:
    """One stored value and what is known of it."""

    namespace: str
    key: str
    type: str
    value: Any
    description: str | None
    updated: datetime
    expires: datetime | None


def typed(value: Any, kv_type: str | None) -> tuple[str, Any]:
    """``value`` converted to ``kv_type`` (guessed from the value when ``None``), and the type.

    Raises:
        UsageError: the value cannot be read as that type; the message says which.
    """
    if kv_type is None:
        return _guess(value), value
    if kv_type not in TYPES:
        raise UsageError(f"unknown kvType {kv_type!r}; one of {', '.join(TYPES)}")
    if not isinstance(value, str):
        return kv_type, value
    text = value.strip()
    try:
        if kv_type == "NUMBER":
            number = json.loads(text)
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise ValueError
            return kv_type, number
        if kv_type == "BOOLEAN":
            return kv_type, text.lower() == "true"
        if kv_type == "JSON":
            return kv_type, json.loads(text)
        if kv_type in ("DATETIME", "DATE"):
            datetime.fromisoformat(text.replace("Z", "+00:00"))
            return kv_type, text
        if kv_type == "DURATION":
            if not re.match(r"^-?P(?=\d|T\d)", text, re.IGNORECASE):
                raise ValueError
            return kv_type, text.upper()
    except ValueError:
        raise UsageError(f"{value!r} is not a {kv_type} value") from None
    return kv_type, value


def _guess(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, dict | list):
        return "JSON"
    return "STRING"
