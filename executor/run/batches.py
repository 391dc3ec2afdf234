"""Cutting a stored file into batches of rows, as a stream: ForEachItem's split.

A file of any size is read in chunks and never whole: a row is the text between two
separators, and only the row being read (and, for ``rows`` and ``bytes``, the batch's write
buffer) is in memory at once. Each batch goes to a ``sink`` as soon as it is complete, so the
caller stores it and forgets it; ``partitions`` and ``regexPattern`` deal rows to several batches
at once, so those are gathered in temporary files first (on disk, not in memory).

The rules are Kestra's ``StorageService.split``: ``regexPattern`` first, then ``bytes``, then
``partitions``, then ``rows``; every row is written back followed by the separator (a file
without a final separator gets one); empty batches are never made.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1024 * 1024  # bytes read from the source at a time
_FLUSH = 256 * 1024  # bytes of rows gathered before they go to the sink as one piece
MAX_ROW_BYTES = 64 * 1024 * 1024  # one row larger than this is refused, not buffered
MAX_GROUPS = 10_000  # distinct regexPattern keys, each a temporary file until the split ends


class BatchError(ValueError):
    """The file cannot be cut by the rule (a row too long, too many groups); says why."""


BatchSink = Callable[[int, Iterable[bytes]], str]
"""Stores batch ``index`` (0-based) from its pieces of bytes; returns where (its URI)."""


@dataclass(frozen=True)
class BatchRule:
    """How rows are grouped: one of ``rows``, ``max_bytes`` (Kestra's ``bytes``), ``partitions``,
    ``regex`` decides (the first given in Kestra's order: regex, bytes, partitions, rows)."""

    rows: int | None = 1
    max_bytes: int | None = None
    partitions: int | None = None
    regex: re.Pattern[bytes] | None = None
    separator: bytes = b"\n"

    def __post_init__(self) -> None:
        if not self.separator:
            raise BatchError("the separator must not be empty")
        for name in ("rows", "max_bytes", "partitions"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BatchError(f"'{name}' must be at least 1, got {value}")
        if (
            self.regex is None
            and self.max_bytes is None
            and self.partitions is None
            and not self.rows
        ):
            raise BatchError("give one of 'rows', 'bytes', 'partitions', 'regexPattern'")


def read_rows(source: IO[bytes], separator: bytes, chunk: int = CHUNK) -> Iterator[bytes]:
    """The rows of ``source`` without their separator, read ``chunk`` bytes at a time.

    A last row without a separator after it is a row; nothing after a final separator is not.

    Raises:
        BatchError: a row longer than :data:`MAX_ROW_BYTES`.
    """
    pending = b""
    while True:
        data = source.read(chunk)
        if not data:
            break
        pending += data
        start = 0
        while True:
            end = pending.find(separator, start)
            if end < 0:
                break
            yield pending[start:end]
            start = end + len(separator)
        pending = pending[start:]
        if len(pending) > MAX_ROW_BYTES:
            raise BatchError(f"a row is longer than {MAX_ROW_BYTES} bytes: is the separator right?")
    if pending:
        yield pending


def split_batches(source: IO[bytes], rule: BatchRule, sink: BatchSink) -> Iterator[str]:
    """Cut ``source`` into batches by ``rule``, handing each to ``sink``; yields their URIs in
    order, each as soon as its batch is stored (an empty file gives none)."""
    rows = read_rows(source, rule.separator)
    if rule.regex is not None:
        yield from _by_key(rows, rule, sink, rule.regex)
    elif rule.max_bytes is not None:
        limit = rule.max_bytes
        yield from _in_order(rows, rule, sink, lambda count, size: size >= limit)
    elif rule.partitions is not None:
        yield from _dealt(rows, rule, sink, rule.partitions)
    else:
        most = rule.rows or 1
        yield from _in_order(rows, rule, sink, lambda count, size: count >= most)


class _Peek:
    """Rows with one seen ahead: a batch ends at a row it leaves to the next one."""

    def __init__(self, rows: Iterator[bytes]) -> None:
        self.rows = rows
        self.ahead = next(rows, None)

    def pop(self) -> bytes:
        row = self.ahead
        assert row is not None
        self.ahead = next(self.rows, None)
        return row


def _in_order(
    rows: Iterator[bytes], rule: BatchRule, sink: BatchSink, full: Callable[[int, int], bool]
) -> Iterator[str]:
    """Consecutive rows per batch; a batch ends once ``full(rows, bytes)`` says so (Kestra's
    ``bytes``: a batch may pass the size by the row that reaches it, a row is never cut)."""
    peek = _Peek(rows)
    index = 0
    while peek.ahead is not None:
        batch = _pieces(peek, rule.separator, full)
        uri = sink(index, batch)
        for _ in batch:  # a sink that stopped early must not leave rows for the next batch
            pass
        yield uri
        index += 1


def _pieces(peek: _Peek, separator: bytes, full: Callable[[int, int], bool]) -> Iterator[bytes]:
    """One batch's rows, each followed by the separator, in pieces of about ``_FLUSH`` bytes."""
    count, size = 0, 0
    buffer = bytearray()
    while peek.ahead is not None and not (count and full(count, size)):
        row = peek.pop()
        buffer += row
        buffer += separator
        count += 1
        size += len(row) + len(separator)
        if len(buffer) >= _FLUSH:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _dealt(rows: Iterator[bytes], rule: BatchRule, sink: BatchSink, count: int) -> Iterator[str]:
    """Rows dealt round the ``count`` batches in turn (Kestra's ``partitions``)."""

    def slot(index: int, row: bytes) -> int:
        return index % count

    yield from _gathered(rows, rule, sink, slot)


def _by_key(
    rows: Iterator[bytes], rule: BatchRule, sink: BatchSink, pattern: re.Pattern[bytes]
) -> Iterator[str]:
    """One batch per value of the pattern's first group, in the order keys first appear (rows
    it does not match, or whose group is empty, go together)."""
    keys: dict[bytes, int] = {}

    def slot(index: int, row: bytes) -> int:
        found = pattern.search(row)
        key = (found.group(1) if found and found.groups() else None) or b""
        if key not in keys:
            if len(keys) >= MAX_GROUPS:
                raise BatchError(f"'regexPattern' gives more than {MAX_GROUPS} groups")
            keys[key] = len(keys)
        return keys[key]

    yield from _gathered(rows, rule, sink, slot)


def _gathered(
    rows: Iterator[bytes], rule: BatchRule, sink: BatchSink, slot: Callable[[int, bytes], int]
) -> Iterator[str]:
    """Rows written to the temporary file of their slot, then each non-empty file stored."""
    with tempfile.TemporaryDirectory(prefix="executor-batches-") as tmp:
        files: dict[int, IO[bytes]] = {}
        try:
            for index, row in enumerate(rows):
                number = slot(index, row)
                out = files.get(number)
                if out is None:
                    out = files[number] = (Path(tmp) / str(number)).open("wb")
                out.write(row)
                out.write(rule.separator)
        finally:
            for out in files.values():
                out.close()
        for index, number in enumerate(sorted(files)):
            with (Path(tmp) / str(number)).open("rb") as data:
                yield sink(index, _chunks(data))


def _chunks(data: IO[bytes]) -> Iterator[bytes]:
    while piece := data.read(CHUNK):
        yield piece
