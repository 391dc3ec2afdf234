"""Records as JSON, for a worker on another host that reports through the server's API.

A worker's ``Recorder`` snapshots what happens (``ExecutionRecord``, ``TaskRunRecord``,
``LogLine``) exactly as a local run does; these functions carry the snapshots over HTTP
unchanged, so the server writes them with the same ``Store.write`` as its own runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from executor.errors import UsageError
from executor.host import Owner
from executor.model import Level, LogBatch, LogLine
from executor.store.records import (
    AttemptRecord,
    ExecutionRecord,
    TaskRunRecord,
    Write,
    parse_ts,
    ts,
)


def encode(writes: Sequence[Write]) -> list[dict[str, Any]]:
    """Snapshots as JSON-ready dicts, in order."""
    out: list[dict[str, Any]] = []
    lines = (
        [line] if not isinstance(line, LogBatch) else line.lines() for line in writes
    )  # a batch of lines read together travels as its lines
    for item in (one for group in lines for one in group):
        if isinstance(item, LogLine):
            out.append(
                {
                    "kind": "log",
                    "timestamp": ts(item.timestamp),
                    "execution_id": item.execution_id,
                    "task_id": item.task_id,
                    "task_run_id": item.task_run_id,
                    "attempt": item.attempt,
                    "stream": item.stream,
                    "level": item.level.value,
                    "message": item.message,
                }
            )
        elif isinstance(item, ExecutionRecord):
            out.append({"kind": "execution", **dataclasses.asdict(item)})
        else:
            out.append({"kind": "task_run", **dataclasses.asdict(item)})
    return out


def decode(items: Sequence[Any]) -> list[Write]:
    """The inverse of :func:`encode`.

    Raises:
        UsageError: an item is not a snapshot (a worker of another version, or not a worker).
    """
    writes: list[Write] = []
    for number, item in enumerate(items):
        try:
            writes.append(_decode_one(dict(item)))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"record {number}: not a snapshot ({type(exc).__name__}: {exc})"
            ) from None
    return writes


def _decode_one(item: dict[str, Any]) -> Write:
    kind = item.pop("kind")
    if kind == "log":
        return LogLine(
            parse_ts(item["timestamp"]),
            item["execution_id"],
            item["task_id"],
            item["task_run_id"],
            item["attempt"],
            item["stream"],
            Level(item["level"]),
            item["message"],
        )
    if kind == "execution":
        item["owner"] = Owner(**item["owner"])
        return ExecutionRecord(**item)
    if kind == "task_run":
        item["attempts"] = tuple(AttemptRecord(**a) for a in item["attempts"])
        return TaskRunRecord(**item)
    raise ValueError(f"unknown kind {kind!r}")
