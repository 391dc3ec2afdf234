"""The workers' protocol: every body of ``/api/v1/worker/...``, as pydantic models.

Imported by both ends, ``server/api/worker.py`` and ``worker/client.py``, so a field renamed on
one side is a type error (or a validation error naming the field) on the other, never a
``KeyError`` in a worker's log. Every model forbids fields it does not know. Names on the wire
are those the first workers spoke (``partBytes``, ``flow_id``...), kept by aliases.

Records (snapshots and log lines) travel in the encoding of :mod:`executor.store.wire`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)


def _wire(name: str, python: str, default: Any = ...) -> Any:
    """A field named ``name`` on the wire (camelCase, as Kestra's API), ``python`` here."""
    return Field(default, validation_alias=AliasChoices(name, python), serialization_alias=name)


# ----- who the worker is


class Heartbeat(_Body):
    """What a worker says of itself every few seconds."""

    name: str
    host: str
    engine_id: str
    queues: list[str]
    labels: list[str]
    slots: int
    running: list[str]
    started: str


class HeartbeatAnswer(_Body):
    """The executions among those the worker runs that were asked to die."""

    kill: list[str] = Field(default_factory=list)


class WorkerEntry(_Body):
    """One worker as ``GET /worker/workers`` lists it (``executor workers``)."""

    name: str
    host: str
    engine_id: str = _wire("engineId", "engine_id")
    queues: list[str]
    labels: list[str]
    slots: int
    busy: int
    free: int
    running: list[str]
    started: str
    last_heartbeat: str = _wire("lastHeartbeat", "last_heartbeat")
    alive: bool


# ----- claiming an execution


class ClaimRequest(_Body):
    worker: str


class Work(_Body):
    """What to run: the flow's revision, the inputs (FILE inputs by name: fetched apart)."""

    namespace: str
    flow_id: str
    revision: int | None
    inputs: dict[str, Any]
    file_inputs: dict[str, str]
    labels: dict[str, str]
    trigger: dict[str, Any] | None
    submitted: str


class FlowSource(_Body):
    """A stored flow's YAML and its revision."""

    source: str
    revision: int


class ClaimAnswer(_Body):
    """Run it now (with what it needs), ``drop`` it, or ``wait`` and ask again."""

    action: Literal["run", "drop", "wait"]
    note: str = ""
    attempt: int = 0
    part_bytes: int | None = _wire("partBytes", "part_bytes", None)
    allow_host_options: bool | None = _wire("allowHostOptions", "allow_host_options", None)
    histories: list[list[str]] = Field(default_factory=list)
    flow: FlowSource | None = None
    work: Work | None = None
    # a restart or a replay: the execution as stored (its inputs, task runs), run as it is
    execution: dict[str, Any] | None = None


class ResumeAnswer(_Body):
    """The inputs of a resume asked for a Pause the worker runs (``None`` while none)."""

    inputs: dict[str, str] | None


class RecordsAnswer(_Body):
    written: int


class PartAnswer(_Body):
    """A part of an output file arrived; with the whole file, its URI."""

    received: int
    uri: str | None = None
    size: int | None = None


# ----- the stores of the held execution


class KvValue(_Body):
    """One KV entry."""

    namespace: str
    key: str
    type: str
    value: Any
    description: str | None = None
    updated: datetime
    expires: datetime | None = None


class KvFound(_Body):
    entry: KvValue | None


class KvList(_Body):
    entries: list[KvValue]


class KvPut(_Body):
    """A value to set (``ttl_seconds``: forget it after this long)."""

    type: str
    value: Any
    description: str | None = None
    ttl_seconds: float | None = None
    overwrite: bool = True


class KvPutAnswer(_Body):
    """``written`` false: ``overwrite`` was false and the key had a value (``message`` says)."""

    written: bool
    message: str = ""


class KvDeleted(_Body):
    deleted: bool


class LogLineBody(_Body):
    """One stored log line."""

    timestamp: datetime
    task_id: str | None
    task_run_id: str | None
    attempt: int | None
    stream: str
    level: str
    message: str


class LogsPage(_Body):
    """Log lines of an execution after a point; ``after`` is where the next page starts
    (``None``: there is no more)."""

    lines: list[LogLineBody]
    after: int | None


class Namespaces(_Body):
    namespaces: list[str]


class NamespacePaths(_Body):
    """The files of a namespace (``exists`` false: it has none, not even a directory)."""

    exists: bool
    paths: list[str]


class NamespacePushed(_Body):
    copied: int
    bytes: int
    skipped: list[str] = Field(default_factory=list)


class NamespaceRemoved(_Body):
    removed: int
