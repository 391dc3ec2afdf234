"""``plugin-redis``: the ``string``, ``list`` and ``pubsub`` families (and their older names)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import Model, TaskBase
from executor.flow.durations import Duration

_R = "io.kestra.plugin.redis"
GET_TYPES = (f"{_R}.string.Get", f"{_R}.Get")
SET_TYPES = (f"{_R}.string.Set", f"{_R}.Set")
DELETE_TYPES = (f"{_R}.string.Delete", f"{_R}.Delete")
INCREMENT_TYPES = (f"{_R}.string.Increment",)
LIST_PUSH_TYPES = (f"{_R}.list.ListPush", f"{_R}.ListPush")
LIST_POP_TYPES = (f"{_R}.list.ListPop", f"{_R}.ListPop")
PUBLISH_TYPES = (f"{_R}.pubsub.Publish", f"{_R}.Publish")
REDIS_TYPES = (
    GET_TYPES
    + SET_TYPES
    + DELETE_TYPES
    + INCREMENT_TYPES
    + LIST_PUSH_TYPES
    + LIST_POP_TYPES
    + PUBLISH_TYPES
)

SerdeType = Literal["STRING", "JSON"]


class RedisTask(TaskBase):
    url: str
    serdeType: SerdeType | str = "STRING"


class SetOptions(Model):
    expirationDuration: Duration | None = None
    expirationDate: str | None = None
    mustNotExist: bool = False
    mustExist: bool = False
    keepTtl: bool = False


class RedisGet(RedisTask):
    type: Literal[GET_TYPES]  # type: ignore[valid-type]
    key: str
    failedOnMissing: bool | str = False


class RedisSet(RedisTask):
    type: Literal[SET_TYPES]  # type: ignore[valid-type]
    key: str
    value: Any
    options: SetOptions = Field(default_factory=SetOptions)
    get: bool | str = False


class RedisDelete(RedisTask):
    type: Literal[DELETE_TYPES]  # type: ignore[valid-type]
    keys: list[str] | str
    failedOnMissingKey: bool | str = False


class RedisIncrement(RedisTask):
    type: Literal[INCREMENT_TYPES]  # type: ignore[valid-type]
    key: str
    amount: int | float | str = 1


class RedisListPush(RedisTask):
    type: Literal[LIST_PUSH_TYPES]  # type: ignore[valid-type]
    key: str
    from_: list[Any] | str = Field(alias="from")


class RedisListPop(RedisTask):
    type: Literal[LIST_POP_TYPES]  # type: ignore[valid-type]
    key: str
    count: int | str = 100
    maxRecords: int | str | None = None
    maxDuration: Duration | None = None


class RedisPublish(RedisTask):
    type: Literal[PUBLISH_TYPES]  # type: ignore[valid-type]
    channel: str
    from_: list[Any] | str = Field(alias="from")
