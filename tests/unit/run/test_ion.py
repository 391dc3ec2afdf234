"""Kestra's text Ion: what the executor writes, amazon-ion reads the same; and back."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from amazon.ion import simpleion

from executor.run import ion

ROW = {
    "id": 7,
    "name": 'a "quoted"\nline',
    "price": 1.5,
    "amount": Decimal("12.50"),
    "at": datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
    "day": date(2024, 1, 2),
    "none": None,
    "ok": True,
    "raw": b"\x00\x01\xff",
    "tags": ["x", 2, {"odd key": 3}],
}


def test_a_row_written_here_reads_the_same_with_amazon_ion() -> None:
    text = ion.dumps(ROW)
    assert "\n" not in text
    theirs = simpleion.loads(text)
    assert theirs["id"] == 7 and theirs["name"] == ROW["name"]
    assert theirs["amount"] == Decimal("12.50") and theirs["price"] == 1.5
    assert theirs["at"] == ROW["at"] and theirs["raw"] == ROW["raw"]
    assert theirs["tags"][2]["odd key"] == 3
    assert ion.loads(text) == ROW


def test_what_amazon_ion_writes_is_read_row_by_row() -> None:
    lines = [
        simpleion.dumps(dict(r), binary=False, omit_version_marker=True)
        for r in (
            {"a": 1, "b": Decimal("2.5")},
            {"a": 2, "s": "t\u00e9xt", "l": [1.25e0, None]},
        )
    ]
    rows = list(ion.read_rows(io.BytesIO(("\n".join(lines) + "\n").encode())))
    assert rows == [{"a": 1, "b": Decimal("2.5")}, {"a": 2, "s": "t\u00e9xt", "l": [1.25, None]}]


def test_kestra_annotations_and_comments() -> None:
    text = b'// a comment\n{d:LocalDateTime::"2024-01-02T03:04:05", n:null.int, e:1d2}\n'
    (row,) = ion.read_rows(io.BytesIO(text))
    assert row == {"d": datetime(2024, 1, 2, 3, 4, 5), "n": None, "e": Decimal("1E+2")}


def test_broken_ion_names_its_line() -> None:
    with pytest.raises(ion.IonError, match="line 2"):
        list(ion.read_rows(io.BytesIO(b"{a:1}\n{a:}\n")))
