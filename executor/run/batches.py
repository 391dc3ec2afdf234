"""Cutting a stored file into batches of rows, as a stream: ForEachItem's split.

A file of any size is read 1 MiB at a time and never whole. What is read is handled as blocks of
whole rows (a row is the text up to a separator; the part of a row a read cut off waits for the
next read), and cut with the C-speed ``bytes`` methods (``count``, ``find``, ``split``), never a
Python step per row for ``rows``, ``bytes`` and ``partitions``: only ``regexPattern`` looks at
each row. Each batch goes to a ``sink`` as soon as it is complete, so the caller stores it and
forgets it; ``partitions`` and ``regexPattern`` deal rows to several batches at once, so those
are gathered in temporary files first (on disk, not in memory).

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
MAX_ROW_BYTES = 64 * 1024 * 1024  # one row larger than this is refused, not buffered
MAX_GROUPS = 10_000  # distinct regexPattern keys, each a temporary file until the split ends
_FIND_LOOP = 64  # up to this many rows, the end of a batch is found row by row (else galloping)


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


def whole_rows(source: IO[bytes], separator: bytes, chunk: int = CHUNK) -> Iterator[bytes]:
    """``source`` as blocks of whole rows, each block ending with the separator (a last row
    without one gets it); a row is never split between two blocks.

    Raises:
        BatchError: a row longer than :data:`MAX_ROW_BYTES`.
    """
    pending = b""
    overlapping = _overlaps(separator)
    while data := source.read(chunk):
        if pending:
            data = pending + data
        end = _last_end(data, separator, overlapping)
        if end == 0:
            pending = data
        else:
            yield data[:end]
            pending = data[end:]
        if len(pending) > MAX_ROW_BYTES:
            raise BatchError(f"a row is longer than {MAX_ROW_BYTES} bytes: is the separator right?")
    if pending:
        yield pending + separator


def _overlaps(separator: bytes) -> bool:
    """Whether two separators can overlap (``;;`` in ``;;;``): then only a reading from the
    left, as ``split`` does, says which bytes are the separator."""
    return any(separator[:k] == separator[-k:] for k in range(1, len(separator)))


def _last_end(data: bytes, separator: bytes, overlapping: bool) -> int:
    """The end of the last separator of ``data``, read from the left (0: none)."""
    if not overlapping:
        cut = data.rfind(separator)
        return 0 if cut < 0 else cut + len(separator)
    found = data.count(separator)
    return _nth_end(data, separator, 0, found) if found else 0


def read_rows(source: IO[bytes], separator: bytes, chunk: int = CHUNK) -> Iterator[bytes]:
    """The rows of ``source`` without their separator, read ``chunk`` bytes at a time.

    A last row without a separator after it is a row; nothing after a final separator is not.
    """
    for block in whole_rows(source, separator, chunk):
        rows = block.split(separator)
        rows.pop()  # the block ends with the separator: nothing follows it
        yield from rows


def split_batches(
    source: IO[bytes], rule: BatchRule, sink: BatchSink, chunk: int = CHUNK
) -> Iterator[str]:
    """Cut ``source`` into batches by ``rule``, handing each to ``sink``; yields their URIs in
    order, each as soon as its batch is stored (an empty file gives none). ``chunk``: bytes
    read at a time."""
    blocks = whole_rows(source, rule.separator, chunk)
    if rule.regex is not None:
        yield from _by_key(blocks, rule, sink, rule.regex)
    elif rule.max_bytes is not None:
        yield from _in_order(blocks, sink, _BytesCut(rule.separator, rule.max_bytes))
    elif rule.partitions is not None:
        yield from _dealt(blocks, rule, sink, rule.partitions)
    else:
        yield from _in_order(blocks, sink, _RowsCut(rule.separator, rule.rows or 1))


class _Cursor:
    """Where the split is in the blocks of whole rows: the current block and an offset in it."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self.blocks = blocks
        self.block = b""
        self.at = 0

    def ready(self) -> bool:
        """Whether rows are left (the next block is read when this one is used up)."""
        while self.at >= len(self.block):
            block = next(self.blocks, None)
            if block is None:
                return False
            self.block, self.at = block, 0
        return True


class _RowsCut:
    """Kestra's ``rows``: ``most`` rows a batch."""

    def __init__(self, separator: bytes, most: int) -> None:
        self.separator, self.most = separator, most

    def start(self) -> None:
        self.taken = 0

    def end_in(self, block: bytes, at: int) -> int | None:
        """Where in ``block`` (from ``at``) the batch ends, or ``None`` if it takes it all."""
        end, found = _nth_end_within(block, self.separator, at, self.most - self.taken)
        self.taken += found
        return end


class _BytesCut:
    """Kestra's ``bytes``: a batch ends with the row that brings it to ``least`` bytes or more
    (a row is never cut, so a batch passes the size by at most one row)."""

    def __init__(self, separator: bytes, least: int) -> None:
        self.separator, self.least = separator, least

    def start(self) -> None:
        self.size = 0

    def end_in(self, block: bytes, at: int) -> int | None:
        reached = at + self.least - self.size  # the batch is full at the row ending here or after
        if reached > len(block):
            self.size += len(block) - at
            return None
        # the first separator (read from ``at``, a row's start) that ends at ``reached`` or after
        before = block.count(self.separator, at, reached - 1)
        return _nth_end(block, self.separator, at, before + 1)


def _nth_end(block: bytes, separator: bytes, at: int, n: int) -> int:
    """The end of the ``n``-th separator of ``block`` from ``at`` (there are at least ``n``)."""
    end, _ = _nth_end_within(block, separator, at, n)
    assert end is not None
    return end


def _nth_end_within(block: bytes, separator: bytes, at: int, n: int) -> tuple[int | None, int]:
    """The end of the ``n``-th separator of ``block`` from ``at`` and ``n``; or ``None`` and
    how many there are, when fewer. Its cost is about the bytes up to that separator."""
    if n <= _FIND_LOOP:
        end = at
        for found in range(n):
            cut = block.find(separator, end)
            if cut < 0:
                return None, found
            end = cut + len(separator)
        return end, n
    # galloping, then halving: a few ``count`` calls over about the batch's own bytes
    low, step = at, max(n * 8, 64)
    high = min(len(block), at + step)
    while (found := block.count(separator, at, high)) < n:
        if high == len(block):
            return None, found
        low, step = high, step * 2
        high = min(len(block), at + step)
    while low < high:
        middle = (low + high) // 2
        if block.count(separator, at, middle) >= n:
            high = middle
        else:
            low = middle + 1
    return low, n


def _in_order(blocks: Iterator[bytes], sink: BatchSink, cut: _RowsCut | _BytesCut) -> Iterator[str]:
    """Consecutive rows a batch, ``cut`` saying where each one ends."""
    cursor = _Cursor(blocks)
    index = 0
    while cursor.ready():
        batch = _pieces(cursor, cut)
        uri = sink(index, batch)
        for _ in batch:  # a sink that stopped early must not leave rows for the next batch
            pass
        yield uri
        index += 1


def _pieces(cursor: _Cursor, cut: _RowsCut | _BytesCut) -> Iterator[bytes]:
    """One batch, as slices of the blocks it spans."""
    cut.start()
    while cursor.ready():
        block, at = cursor.block, cursor.at
        end = cut.end_in(block, at)
        if end is None:
            cursor.at = len(block)
            yield block[at:]
            continue
        cursor.at = end
        yield block[at:end]
        return


def _dealt(blocks: Iterator[bytes], rule: BatchRule, sink: BatchSink, count: int) -> Iterator[str]:
    """Rows dealt round the ``count`` batches in turn (Kestra's ``partitions``), a block at a
    time: each batch takes every ``count``-th row of it, joined in C."""
    separator = rule.separator
    with tempfile.TemporaryDirectory(prefix="executor-batches-") as tmp:
        files: dict[int, IO[bytes]] = {}
        dealt = 0
        try:
            for block in blocks:
                rows = block.split(separator)
                rows.pop()
                # every batch has rows in a block of ``count`` rows or more; fewer reach only some
                few = len(rows) < count
                numbers = {(dealt + j) % count for j in range(len(rows))} if few else range(count)
                for number in numbers:
                    mine = rows[(number - dealt) % count :: count]
                    if mine:
                        out = files.get(number)
                        if out is None:
                            out = files[number] = (Path(tmp) / str(number)).open("wb")
                        out.write(separator.join(mine))
                        out.write(separator)
                dealt += len(rows)
        finally:
            for out in files.values():
                out.close()
        yield from _stored(Path(tmp), sorted(files), sink)


def _by_key(
    blocks: Iterator[bytes], rule: BatchRule, sink: BatchSink, pattern: re.Pattern[bytes]
) -> Iterator[str]:
    """One batch per value of the pattern's first group, in the order keys first appear (rows
    it does not match, or whose group is empty, go together)."""
    separator = rule.separator
    keys: dict[bytes, int] = {}
    with tempfile.TemporaryDirectory(prefix="executor-batches-") as tmp:
        files: dict[int, IO[bytes]] = {}
        try:
            for block in blocks:
                rows = block.split(separator)
                rows.pop()
                for row in rows:
                    found = pattern.search(row)
                    key = (found.group(1) if found and found.groups() else None) or b""
                    number = keys.get(key)
                    if number is None:
                        if len(keys) >= MAX_GROUPS:
                            raise BatchError(f"'regexPattern' gives more than {MAX_GROUPS} groups")
                        number = keys[key] = len(keys)
                        files[number] = (Path(tmp) / str(number)).open("wb")
                    files[number].write(row + separator)
        finally:
            for out in files.values():
                out.close()
        yield from _stored(Path(tmp), sorted(files), sink)


def _stored(tmp: Path, numbers: list[int], sink: BatchSink) -> Iterator[str]:
    """Each gathered batch file handed to the sink, in order."""
    for index, number in enumerate(numbers):
        with (tmp / str(number)).open("rb") as data:
            yield sink(index, _chunks(data))


def _chunks(data: IO[bytes]) -> Iterator[bytes]:
    while piece := data.read(CHUNK):
        yield piece
