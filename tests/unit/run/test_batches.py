"""ForEachItem's split: a file cut into batches of rows as a stream, by Kestra's rules."""

from __future__ import annotations

import io
import random
import re
import tracemalloc
from collections.abc import Iterable

import pytest

from executor.run.batches import BatchError, BatchRule, read_rows, split_batches


class Kept:
    """A sink that keeps each batch, as the artifact store would, and names it by index."""

    def __init__(self) -> None:
        self.batches: list[bytes] = []

    def __call__(self, index: int, pieces: Iterable[bytes]) -> str:
        assert index == len(self.batches)
        self.batches.append(b"".join(pieces))
        return f"kestra:///batch-{index}"


def split(data: bytes, rule: BatchRule, chunk: int = 1024 * 1024) -> list[bytes]:
    kept = Kept()
    uris = list(split_batches(io.BytesIO(data), rule, kept, chunk))
    assert uris == [f"kestra:///batch-{i}" for i in range(len(kept.batches))]
    return kept.batches


def test_rows_with_a_last_partial_batch() -> None:
    """Seven rows by three: two full batches and one of the last row."""
    data = b"".join(b"r%d\n" % i for i in range(7))
    assert split(data, BatchRule(rows=3)) == [b"r0\nr1\nr2\n", b"r3\nr4\nr5\n", b"r6\n"]


def test_rows_default_one_per_batch() -> None:
    """Kestra's default batch is one row."""
    assert split(b"a\nb\n", BatchRule()) == [b"a\n", b"b\n"]


def test_no_trailing_separator_still_gives_the_last_row_its_separator() -> None:
    """A file that does not end with the separator: its last row is a row, written back whole."""
    assert split(b"a\nb\nc", BatchRule(rows=2)) == [b"a\nb\n", b"c\n"]


def test_empty_file_gives_no_batch() -> None:
    """An empty file gives no batch, so no child."""
    assert split(b"", BatchRule(rows=10)) == []
    assert split(b"", BatchRule(partitions=3)) == []


def test_bytes_never_cuts_a_row_and_passes_the_size_by_the_row_that_reaches_it() -> None:
    """``bytes``: a batch ends once it holds at least that many bytes (Kestra's rule)."""
    data = b"aaaa\nbb\ncccccc\nd\n"  # rows of 5, 3, 7, 2 bytes with their separators
    assert split(data, BatchRule(rows=None, max_bytes=6)) == [b"aaaa\nbb\n", b"cccccc\n", b"d\n"]


def test_partitions_deal_rows_in_turn_and_make_no_empty_batch() -> None:
    """``partitions``: rows dealt round the batches; fewer rows than partitions, fewer batches."""
    data = b"".join(b"%d\n" % i for i in range(7))
    assert split(data, BatchRule(partitions=3)) == [b"0\n3\n6\n", b"1\n4\n", b"2\n5\n"]
    assert split(b"x\ny\n", BatchRule(partitions=5)) == [b"x\n", b"y\n"]


def test_regex_groups_rows_by_key_in_order_of_first_appearance() -> None:
    """``regexPattern``: one batch per value of the first group."""
    data = b"fr,1\nde,2\nfr,3\nit,4\n"
    rule = BatchRule(regex=re.compile(rb"^(\w+),"))
    assert split(data, rule) == [b"fr,1\nfr,3\n", b"de,2\n", b"it,4\n"]


def test_precedence_is_kestras_regex_bytes_partitions_rows() -> None:
    """With the default ``rows: 1`` still set, ``partitions`` decides."""
    assert split(b"a\nb\nc\n", BatchRule(rows=1, partitions=2)) == [b"a\nc\n", b"b\n"]


def test_separator_of_several_bytes_across_chunk_boundaries() -> None:
    """A separator cut in two by the read size is still found."""
    data = b"one||two||three||"
    assert list(read_rows(io.BytesIO(data), b"||", chunk=4)) == [b"one", b"two", b"three"]
    assert split(data, BatchRule(rows=2, separator=b"||")) == [b"one||two||", b"three||"]


def test_bad_rules_are_refused_with_the_property_named() -> None:
    """Zero or negative sizes and an empty separator are refused before reading anything."""
    with pytest.raises(BatchError, match="'rows' must be at least 1"):
        BatchRule(rows=0)
    with pytest.raises(BatchError, match="separator"):
        BatchRule(separator=b"")


def test_a_row_past_the_limit_is_refused_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without the separator is not read whole in search of it."""
    monkeypatch.setattr("executor.run.batches.MAX_ROW_BYTES", 1000)
    with pytest.raises(BatchError, match="row is longer than 1000 bytes"):
        list(read_rows(io.BytesIO(b"x" * 5000), b"\n", chunk=512))


def reference(data: bytes, rule: BatchRule) -> list[bytes]:
    """Kestra's rules written the plain way, a row at a time, to check the fast cuts against."""
    sep = rule.separator
    rows = data.split(sep)
    if rows[-1] == b"":
        rows.pop()
    if rule.regex is not None:
        groups: dict[bytes, list[bytes]] = {}
        for row in rows:
            found = rule.regex.search(row)
            key = (found.group(1) if found and found.groups() else None) or b""
            groups.setdefault(key, []).append(row)
        parts = list(groups.values())
    elif rule.max_bytes is not None:
        parts, size = [], 0
        for row in rows:
            if not parts or size >= rule.max_bytes:
                parts.append([])
                size = 0
            parts[-1].append(row)
            size += len(row) + len(sep)
    elif rule.partitions is not None:
        parts = [rows[i :: rule.partitions] for i in range(rule.partitions)]
    else:
        most = rule.rows or 1
        parts = [rows[i : i + most] for i in range(0, len(rows), most)]
    return [b"".join(row + sep for row in part) for part in parts if part]


@pytest.mark.parametrize("seed", range(40))
def test_the_cuts_agree_with_a_row_by_row_reading_whatever_the_read_size(seed: int) -> None:
    """Random files (empty rows, a missing final separator, a two-byte separator), random
    rules and read sizes as small as one byte: the same batches as the plain rules give."""
    rng = random.Random(seed)
    sep = rng.choice([b"\n", b";;"])
    rows = [bytes(rng.choice(b"abcxyz") for _ in range(rng.randint(0, 12))) for _ in range(60)]
    data = sep.join(rows) + (sep if rng.random() < 0.7 else b"")
    rules = [
        BatchRule(rows=rng.randint(1, 80), separator=sep),
        BatchRule(rows=None, max_bytes=rng.randint(1, 90), separator=sep),
        BatchRule(partitions=rng.randint(1, 70), separator=sep),
        BatchRule(regex=re.compile(rb"^([a-c])"), separator=sep),
    ]
    for rule in rules:
        for chunk in (1, 2, 3, 7, 64, 4096):
            assert split(data, rule, chunk) == reference(data, rule), (rule, chunk)


def test_a_batch_of_many_rows_ends_at_the_right_row() -> None:
    """Past the row-by-row search (hundreds of rows a batch), the end is still exact."""
    data = b"".join(b"%d\n" % i for i in range(10_000))
    rule = BatchRule(rows=997)
    for chunk in (100, 4096, 1024 * 1024):
        assert split(data, rule, chunk) == reference(data, rule)


class Generated(io.RawIOBase):
    """A large file made as it is read: ``rows`` rows of ``width`` bytes, never held whole."""

    def __init__(self, rows: int, width: int) -> None:
        self.left = rows
        self.row = b"x" * (width - 1) + b"\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(self.left, len(buffer) // len(self.row))
        if count == 0:
            return 0
        data = self.row * count
        buffer[: len(data)] = data
        self.left -= count
        return len(data)


class Counted:
    """A sink that counts bytes and drops them, as a store writing to disk would."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, index: int, pieces: Iterable[bytes]) -> str:
        self.sizes.append(sum(len(p) for p in pieces))
        return str(index)


@pytest.mark.parametrize(
    "rule",
    [BatchRule(rows=1000), BatchRule(rows=None, max_bytes=1_000_000), BatchRule(partitions=4)],
    ids=["rows", "bytes", "partitions"],
)
def test_a_large_file_is_split_in_bounded_memory(rule: BatchRule) -> None:
    """32 MB of rows split with a peak of Python memory far below the file's size."""
    rows, width = 80_000, 400  # 32 MB
    source = io.BufferedReader(Generated(rows, width), buffer_size=1024 * 1024)
    sink = Counted()
    tracemalloc.start()
    try:
        for _ in split_batches(source, rule, sink):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(sink.sizes) == rows * width
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {rows * width}-byte file"
