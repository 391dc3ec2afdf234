"""The KV store tasks: ``core.kv.Set``, ``Get``, ``GetKeys``, ``Delete`` (Kestra's names)."""

from __future__ import annotations

from typing import Any, Literal

from executor.flow.base import TaskBase
from executor.flow.durations import Duration

KV_SET_TYPES = ("io.kestra.plugin.core.kv.Set",)
KV_GET_TYPES = ("io.kestra.plugin.core.kv.Get",)
KV_GET_KEYS_TYPES = ("io.kestra.plugin.core.kv.GetKeys",)
KV_DELETE_TYPES = ("io.kestra.plugin.core.kv.Delete",)
KV_TYPES = KV_SET_TYPES + KV_GET_TYPES + KV_GET_KEYS_TYPES + KV_DELETE_TYPES

KV_VALUE_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


class KvTask(TaskBase):
    """What every KV task has: the namespace (default: the flow's)."""

    namespace: str | None = None


class KvSetTask(KvTask):
    """``Set``: store ``value`` under ``key``, typed by ``kvType``, for ``ttl`` at most."""

    type: Literal[KV_SET_TYPES]  # type: ignore[valid-type]
    key: str
    value: Any
    kvType: Literal[KV_VALUE_TYPES] | None = None  # type: ignore[valid-type]
    kvDescription: str | None = None
    overwrite: bool | str = True
    ttl: Duration | None = None


class KvGetTask(KvTask):
    """``Get``: ``outputs.<id>.value`` (null when missing, unless ``errorOnMissing``)."""

    type: Literal[KV_GET_TYPES]  # type: ignore[valid-type]
    key: str
    errorOnMissing: bool | str = False


class KvGetKeysTask(KvTask):
    """``GetKeys``: ``outputs.<id>.keys``, those starting with ``prefix``."""

    type: Literal[KV_GET_KEYS_TYPES]  # type: ignore[valid-type]
    prefix: str | None = None


class KvDeleteTask(KvTask):
    """``Delete``: ``outputs.<id>.deleted`` says whether there was a value."""

    type: Literal[KV_DELETE_TYPES]  # type: ignore[valid-type]
    key: str
    errorOnMissing: bool | str = False
