"""The ground of the flow language: the model base, ``retry`` and what every task has.

Task models live in :mod:`executor.flow.model` and the ``tasks_*`` modules beside it; they
all build on :class:`TaskBase` here, so those modules never import one another in a circle.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from executor import names
from executor.flow.durations import Duration, DurationOrTemplate

TASK_ID_PATTERN = names.TASK_ID


class Model(BaseModel):
    """Base of every flow model: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Retry(Model):
    """Kestra's ``retry``: re-run a failed task in the same container."""

    type: Literal["constant", "exponential", "random"]
    interval: Duration | None = None
    maxInterval: Duration | None = None
    minInterval: Duration | None = None
    delayFactor: float | None = None
    maxAttempts: int | None = Field(default=None, ge=1)  # Kestra's current name
    maxAttempt: int | None = Field(default=None, ge=1)  # its deprecated alias
    maxDuration: Duration | None = None
    warningOnRetry: bool = False
    behavior: Literal["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"] = "RETRY_FAILED_TASK"

    @model_validator(mode="after")
    def _bounded(self) -> Retry:
        both = self.maxAttempts is not None and self.maxAttempt is not None
        if both and self.maxAttempts != self.maxAttempt:
            raise ValueError(
                "retry gives maxAttempts and its deprecated alias maxAttempt different values"
            )
        if self.max_attempts is None and self.maxDuration is None:
            raise ValueError("retry needs maxAttempts (or the older maxAttempt) or maxDuration")
        if self.type == "constant" and self.interval is None:
            raise ValueError("a constant retry needs an interval")
        if self.type == "exponential" and (self.interval is None or self.maxInterval is None):
            raise ValueError("an exponential retry needs interval and maxInterval")
        if self.type == "random" and (self.minInterval is None or self.maxInterval is None):
            raise ValueError("a random retry needs minInterval and maxInterval")
        return self

    @property
    def max_attempts(self) -> int | None:
        """How many attempts at most, whichever of Kestra's names gave it."""
        return self.maxAttempts if self.maxAttempts is not None else self.maxAttempt


class TaskBase(Model):
    """Properties every task has."""

    type: str  # each task kind narrows it to its Literal names (the union's discriminator)
    id: str = Field(pattern=TASK_ID_PATTERN)
    description: str | None = None
    timeout: DurationOrTemplate | None = None
    retry: Retry | None = None
    disabled: bool = False
    runIf: str | None = None
    allowFailure: bool = False
    allowWarning: bool = False
    # Accepted for compatibility; they steer Kestra's cluster, not a single host.
    workerGroup: dict[str, Any] | None = None
    workerSelector: dict[str, Any] | None = None  # Kestra 2.0's replacement for workerGroup
    logLevel: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] | None = None
    logToFile: bool = False

    version: str | None = None  # a plugin version: there is one build of each task here
    pluginDefaultsRef: str | None = None
    taskCache: dict[str, Any] | None = None  # Kestra's task-output cache: not kept
    assets: Any = None  # Kestra's lineage declarations: nothing here reads them

    def children(self) -> list[tuple[str, list[Any]]]:
        """The task lists this task holds, by property name (none for a runnable task)."""
        return []

    @property
    def worker_key(self) -> str | None:
        """The worker queue this task asks for (``workerGroup.key``, or ``workerSelector``)."""
        return worker_key(self.workerGroup, self.workerSelector)

    def child_path(self, key: str, index: int) -> tuple[str | int, ...]:
        """Where the ``index``-th task of the list ``key`` sits in the document."""
        return (*key.split(".", 1), index)

    @field_validator("runIf", mode="before")
    @classmethod
    def _run_if_is_expression(cls, value: Any) -> Any:
        if isinstance(value, str) and "{{" not in value:
            raise ValueError('runIf must be an expression such as "{{ inputs.enabled }}"')
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: timedelta | str | None) -> timedelta | str | None:
        if isinstance(value, timedelta) and value.total_seconds() <= 0:
            raise ValueError("timeout must be a positive ISO-8601 duration such as PT30S")
        return value


def worker_key(group: Any, selector: Any) -> str | None:
    """The queue named by Kestra's ``workerGroup.key`` or Kestra 2.0's ``workerSelector``.

    A selector's ``key``, or its ``tags``: one tag names the queue (a worker started with
    ``--label gpu`` takes ``tags: [gpu]``); several are joined sorted with ``+``
    (``--queue eu+gpu``), since one worker must carry them all.
    """
    if isinstance(group, dict) and group.get("key"):
        return str(group["key"])
    if not isinstance(selector, dict):
        return None
    if selector.get("key"):
        return str(selector["key"])
    tags = selector.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(tags, list) and tags:
        return "+".join(sorted({str(t) for t in tags}))
    return None


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
