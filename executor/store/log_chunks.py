"""Log lines in chunks: consecutive lines of one task attempt, stream and level share a row.

A task printing a million lines costs thousands of inserts, not a million: each ``log_chunks`` row
keeps its lines' timestamps and texts as JSON arrays. A quiet task's line is a chunk of one,
written as it arrives. The ``log_lines`` view shows one row per line for anyone reading the
database with ``sqlite3``.
"""

from __future__ import annotations

import json
from typing import Any

from executor.model import LogBatch, LogLine

CHUNK_LINES = 500
INSERT_CHUNK = (
    "INSERT INTO log_chunks (execution_id, task_id, task_run_id, attempt, stream,"
    " level, lines, first_ts_us, ts_us, messages)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Chunker:
    """Groups consecutive lines of the same task attempt, stream and level into chunk rows.

    This is the hot path of a loud task: a few attribute reads and two appends per line.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.open = False
        self._key: tuple[Any, ...] = ()
        self._stamps: list[int] = []
        self._messages: list[str] = []
        self._last: Any = None
        self._last_us = 0

    def add(self, line: LogLine) -> None:
        key = (
            line.execution_id,
            line.task_run_id,
            line.attempt,
            line.stream,
            line.level,
            line.task_id,
        )
        if key != self._key or len(self._messages) >= CHUNK_LINES:
            self._close()
            self._key = key
            self.open = True
        stamp = line.timestamp
        if stamp is not self._last:  # lines of one batch share their timestamp object
            self._last, self._last_us = stamp, round(stamp.timestamp() * 1_000_000)
        self._stamps.append(self._last_us)
        self._messages.append(line.message)

    def add_batch(self, batch: LogBatch) -> None:
        """Lines that arrived together: appended to the open chunk (same key) in slices."""
        key = (
            batch.execution_id,
            batch.task_run_id,
            batch.attempt,
            batch.stream,
            batch.level,
            batch.task_id,
        )
        if key != self._key:
            self._close()
            self._key = key
            self.open = True
        stamp = batch.timestamp
        if stamp is not self._last:
            self._last, self._last_us = stamp, round(stamp.timestamp() * 1_000_000)
        messages, start = batch.messages, 0
        while start < len(messages):
            if len(self._messages) >= CHUNK_LINES:
                self._close()
                self._key = key
                self.open = True
            end = start + CHUNK_LINES - len(self._messages)
            piece = messages[start:end]
            self._messages.extend(piece)
            self._stamps.extend([self._last_us] * len(piece))
            start = end

    def _close(self) -> None:
        if not self.open:
            return
        execution_id, run_id, attempt, stream, level, task_id = self._key
        self.rows.append(
            (
                execution_id,
                task_id,
                run_id,
                attempt,
                stream,
                level.value,
                len(self._messages),
                self._stamps[0],
                json.dumps(self._stamps, separators=(",", ":")),
                json.dumps(self._messages, ensure_ascii=False),
            )
        )
        self._stamps, self._messages = [], []
        self.open = False
        self._key = ()

    def finish(self) -> list[tuple[Any, ...]]:
        """The chunk rows so far (the open chunk closed), and a fresh start."""
        self._close()
        rows, self.rows = self.rows, []
        return rows
